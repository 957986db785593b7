"""hemcli.runs: result paths and their checks, atomic writes, and the one-run-per-path lock."""
import errno
import json
import subprocess
import sys

import pytest

from hemcli.errors import HemError
from hemcli.fileio import write_atomic, write_json_atomic
from hemcli.runs.lock import RunLock
from hemcli.runs.paths import check_output, checkpoint_path, lock_path


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_files_beside_the_result(tmp_path):
    path = tmp_path / "classify/digits/lenet/hem-/base--0123456789/seed3.json"
    assert checkpoint_path(path) == path.with_name("seed3.ckpt.pt")
    assert lock_path(path) == path.with_name(".seed3.json.lock")


# ---------------------------------------------------------------- atomic writes


def test_atomic_write_leaves_no_temporaries(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert names(tmp_path) == ["r.json"]


def test_unserialisable_data_touches_no_file(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1} and names(tmp_path) == ["r.json"]


def test_disk_full_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"old")

    def fill_the_disk(handle):
        handle.write(b"half of a new file")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(HemError) as err:
        write_atomic(path, fill_the_disk, what="checkpoint")
    assert str(err.value) == f"no space left on device writing checkpoint {path}"
    assert path.read_bytes() == b"old" and names(tmp_path) == ["ckpt.pt"]


def test_interrupted_write_removes_the_temporary(tmp_path):
    def interrupted(handle):
        handle.write(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "r.json", interrupted)
    assert names(tmp_path) == []


def test_two_writers_of_one_path_use_different_temporaries(tmp_path):
    path, during = tmp_path / "r.json", []

    def inner(handle):
        during.extend(names(tmp_path))
        handle.write(b"inner")

    def outer(handle):
        write_atomic(path, inner)  # a second process writing the same path while this one does
        handle.write(b"outer")

    write_atomic(path, outer)
    assert len(during) == 2 and all(n.startswith(".r.json.") and n.endswith(".tmp") for n in during)
    assert path.read_bytes() == b"outer" and names(tmp_path) == ["r.json"]


# ---------------------------------------------------------------- checks before anything is written


def test_existing_result_is_not_overwritten(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{}")
    with pytest.raises(HemError, match="already exists.*--overwrite"):
        check_output(path, overwrite=False)
    with pytest.raises(HemError, match="already finished"):
        check_output(path, overwrite=False, resume=True)
    check_output(path, overwrite=True)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_at_the_result_or_checkpoint_path(tmp_path, overwrite):
    for blocked in (tmp_path / "a" / "r.json", checkpoint_path(tmp_path / "b" / "r.json")):
        blocked.mkdir(parents=True)
        with pytest.raises(HemError, match=f"path {blocked} exists and is not a file"):
            check_output(blocked.parent / "r.json", overwrite=overwrite)


def test_unwritable_output_is_found_without_creating_folders(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HemError, match=f"cannot write results under .*: {blocker} is not a folder"):
        check_output(blocker / "sub" / "r.json", overwrite=False)
    check_output(tmp_path / "new" / "deeper" / "r.json", overwrite=False)
    assert names(tmp_path) == ["file"]


# ---------------------------------------------------------------- the lock


def test_lock_creates_folders_and_removes_what_it_made_when_nothing_was_written(tmp_path):
    result = tmp_path / "out" / "a" / "r.json"
    with RunLock(result) as lock:
        assert lock.path.is_file()
    assert names(tmp_path) == []


def test_lock_keeps_folders_with_files_and_removes_the_lock_file(tmp_path):
    result = tmp_path / "out" / "r.json"
    with RunLock(result):
        result.write_text("{}")
    assert names(result.parent) == ["r.json"]


def test_second_holder_is_refused_naming_the_lock(tmp_path):
    result = tmp_path / "r.json"
    with RunLock(result):
        with pytest.raises(HemError) as err:
            RunLock(result).__enter__()
    assert f"its lock {lock_path(result)} is held" in str(err.value)
    assert names(tmp_path) == []


def test_lock_file_of_a_dead_process_is_taken_over(tmp_path):
    result = tmp_path / "r.json"
    code = ("import sys, os; from hemcli.runs.lock import RunLock; "
            f"lock = RunLock(__import__('pathlib').Path({str(result)!r})).__enter__(); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True)  # dies holding it, as with kill -9
    assert lock_path(result).exists()
    with RunLock(result):
        pass
    assert not lock_path(result).exists()


def test_lock_in_a_folder_that_cannot_be_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HemError, match="cannot write results under"):
        RunLock(blocker / "sub" / "r.json").__enter__()
    assert names(tmp_path) == ["file"]


def test_an_atomic_write_has_the_mode_of_any_new_file(tmp_path):
    import os

    mask = os.umask(0o027)
    try:
        path = tmp_path / "r.json"
        write_json_atomic(path, {"a": 1})
        (tmp_path / "plain").write_text("x")
        assert path.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(mask)
