import json

import pytest

from hemcli.errors import HemError
from hemcli.results import build_result, git_commit, prepare_output, result_path, write_json_atomic

CFG = {"task": "classify", "dataset": {"name": "digits"}, "model": {"arch": "lenet"},
       "loss": {"name": "hem-"}, "seed": 3}


def test_path_from_recipe(tmp_path):
    assert result_path(tmp_path, CFG) == tmp_path / "classify/digits/lenet/hem-/seed3.json"


def test_atomic_write_leaves_no_temporaries(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_existing_result_is_not_overwritten(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{}")
    with pytest.raises(HemError, match="already exists.*--overwrite"):
        prepare_output(path, overwrite=False)
    with pytest.raises(HemError, match="already finished"):
        prepare_output(path, overwrite=False, resume=True)
    prepare_output(path, overwrite=True)


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HemError, match="cannot write results under"):
        prepare_output(blocker / "sub" / "r.json", overwrite=False)


def test_result_record():
    result = build_result(CFG, {"clean_accuracy": 90.0}, [], {"device": "cpu"}, {"total_seconds": 1.0})
    assert result["schema_version"] == 1 and result["status"] == "complete"
    assert result["recipe"] is CFG and result["run"] == "classify/digits/lenet/hem-/seed3"
    assert set(git_commit()) == {"commit", "dirty"}
