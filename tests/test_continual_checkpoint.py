"""``hem continual --resume`` over a file at the checkpoint path that is not a hem continual checkpoint
of this run: a planted pickle (raw, or inside a torch.save zip) whose unpickling would make a marker
file, a truncated checkpoint, a torch file of another structure, a ``hem classify`` checkpoint, one
of another recipe. Each: exit code 2, one ``hem: error:`` line naming the checkpoint, nothing on
stdout, the pickle's code never run, nothing written or changed under the working folder."""
from __future__ import annotations

import pathlib
import pickle
from pathlib import Path

import pytest
import torch

from test_bad_input import check_case

from hemcli.continual.checkpoint import FORMAT

ARGV = ["continual", "--quiet", "--epochs", "1", "--resume", "--out", "results"]
MARKER = "MARKER"


def planned(flags: dict) -> tuple[dict, Path]:
    """The recipe and the checkpoint path (relative to the working folder) of `hem continual` with ``flags``."""
    from hemcli.runs.paths import checkpoint_path
    from hemcli.runs.spec import plan_run

    spec = plan_run("continual", None, flags, [], "results")
    return spec.cfg, checkpoint_path(spec.path)


CHECKPOINT = planned({"epochs": 1})[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small runs on a shared machine: one thread, as tests/test_continual.py trains."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Planted:
    """Unpickled, it would create the marker file: what a crafted checkpoint could run instead."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory) -> bytes:
    """The bytes of the checkpoint this run leaves after its first experience (killed then)."""
    from hemcli.continual import loop
    from hemcli.tasks import continual

    path = tmp_path_factory.mktemp("real") / "seed0.ckpt.pt"
    saved = loop.save_checkpoint

    def save_then_die(strategy, target):
        saved(strategy, target)
        raise KeyboardInterrupt

    loop.save_checkpoint = save_then_die
    try:
        with pytest.raises(KeyboardInterrupt):
            continual.run(planned({"epochs": 1})[0], checkpoint=path, quiet=True)
    finally:
        loop.save_checkpoint = saved
    return path.read_bytes()


def put(content: bytes | object):
    """A setup writing ``content`` (bytes, or an object for torch.save) at the checkpoint path."""
    def write(root: Path) -> None:
        target = root / CHECKPOINT
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            torch.save(content, target)
    return write


NOT_ONE = f"cannot read checkpoint {CHECKPOINT}: not a hem continual checkpoint"
UNREADABLE = f"{NOT_ONE}; pass --overwrite to start again"  # found as it is read
MISFIT = f"{NOT_ONE} (it does not fit this model and strategy); pass --overwrite"  # found as it is put back


def refused(tmp_path, monkeypatch, capsys, setup, message=UNREADABLE):
    check_case(tmp_path, monkeypatch, capsys, ARGV, message, setup)
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("form", ["pickle", "torch zip"])
def test_a_planted_pickle_runs_nothing(tmp_path, monkeypatch, capsys, form):
    marker = tmp_path / MARKER
    planted = Planted(marker)
    if form == "pickle":
        setup = put(pickle.dumps({"format": FORMAT, "strategy": planted}))
    else:
        setup = put({"format": FORMAT, "strategy": planted})  # torch.save pickles it, __reduce__ and all
    assert pickle.loads(pickle.dumps(planted)) is None and marker.exists()  # the pickle does run, unpickled
    marker.unlink()
    refused(tmp_path, monkeypatch, capsys, setup)


def test_a_truncated_checkpoint_is_refused(tmp_path, monkeypatch, capsys, real_checkpoint):
    refused(tmp_path, monkeypatch, capsys, put(real_checkpoint[:len(real_checkpoint) // 2]))


def test_an_empty_file_is_refused(tmp_path, monkeypatch, capsys):
    refused(tmp_path, monkeypatch, capsys, put(b""))


@pytest.mark.parametrize("change", ["a list", "no format", "a key missing", "a key of the wrong type",
                                    "weights of another model", "a strategy's state"])
def test_a_torch_file_of_another_structure_is_refused(tmp_path, monkeypatch, capsys, real_checkpoint, change):
    import io

    state = torch.load(io.BytesIO(real_checkpoint), weights_only=True)
    if change == "a list":
        state = [1, 2, 3]
    elif change == "no format":
        del state["format"]
    elif change == "a key missing":
        del state["optimizer"]
    elif change == "a key of the wrong type":
        state["experiences_done"] = "1"
    elif change == "weights of another model":
        state["model"] = {name: torch.zeros(2) for name in state["model"]}
    else:  # naive keeps nothing between experiences: the state of a plugin it does not have
        state["strategy"] = {"ewc": {"saved_params": {}, "importances": {}}}
    misfit = change in ("weights of another model", "a strategy's state")
    refused(tmp_path, monkeypatch, capsys, put(state), MISFIT if misfit else UNREADABLE)


def test_a_classify_checkpoint_is_refused(tmp_path, monkeypatch, capsys):
    from hemcli.runs.spec import plan_run
    from hemcli.engine.checkpoint import Checkpointer
    from hemcli.engine.optim import make_optimizer, make_scheduler

    def classify_checkpoint(root: Path) -> None:
        cfg = plan_run("classify", None, {"epochs": 1}, [], "results").cfg
        (root / CHECKPOINT).parent.mkdir(parents=True)
        model = torch.nn.Linear(2, 2)
        optimizer = make_optimizer(cfg, model.parameters())
        Checkpointer(root / CHECKPOINT, cfg).save(1, model, optimizer, make_scheduler(cfg, optimizer),
                                                  torch.Generator(), [])

    refused(tmp_path, monkeypatch, capsys, classify_checkpoint)


def test_a_checkpoint_of_another_recipe_is_refused(tmp_path, monkeypatch, capsys, real_checkpoint):
    import io

    state = torch.load(io.BytesIO(real_checkpoint), weights_only=True)
    state["recipe"]["optim"]["lr"] = 0.5
    refused(tmp_path, monkeypatch, capsys, put(state), f"checkpoint {CHECKPOINT} was made with another recipe; "
            "resume with the same options or pass --overwrite to start again")


def test_the_real_checkpoint_resumes(tmp_path, monkeypatch, capsys, real_checkpoint):
    """The control: the same setup with the checkpoint as written resumes and finishes."""
    from hemcli.cli import main

    monkeypatch.chdir(tmp_path)
    put(real_checkpoint)(tmp_path)
    assert main(ARGV) == 0
    assert capsys.readouterr().out == f"{CHECKPOINT.parent / 'seed0.json'}\n"
    assert not CHECKPOINT.exists()
