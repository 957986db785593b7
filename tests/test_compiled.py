"""--compile (hemcli/engine/compiled.py, issue 29): the same numbers as eager; eager with one warning where
compilation fails."""
from __future__ import annotations

import json

import pytest
import torch

from hemcli.cli import main

RUN = ["classify", "--epochs", "2", "--arch", "mlp", "--quiet"]


def hem(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def result(path: str) -> dict:
    return json.loads(open(path.strip()).read())


@pytest.mark.slow
def test_a_compiled_run_equals_the_eager_one_within_float_tolerance(tmp_path, capsys):
    code, eager, _ = hem(capsys, *RUN, "--out", str(tmp_path / "eager"))
    code2, compiled, err = hem(capsys, *RUN, "--compile", "--out", str(tmp_path / "compiled"))
    assert code == code2 == 0 and "torch.compile is not available" not in err
    # train.compile says how a run runs, not what it trains: one condition, one path below --out
    assert eager.strip().split("/eager/")[1] == compiled.strip().split("/compiled/")[1]
    a, b = result(eager), result(compiled)
    for row_a, row_b in zip(a["history"], b["history"]):
        assert row_b["train_loss"] == pytest.approx(row_a["train_loss"], rel=1e-4)
    assert b["metrics"]["clean_accuracy"] == pytest.approx(a["metrics"]["clean_accuracy"], abs=0.6)  # one image


def test_where_compilation_fails_the_run_warns_once_and_trains_eagerly(tmp_path, capsys, monkeypatch):
    def broken(model, *args, **kwargs):
        def forward(*inputs, **named):
            raise RuntimeError("Compiler: cc not found\nmore lines")
        return forward

    code, eager, _ = hem(capsys, *RUN, "--out", str(tmp_path / "eager"))
    monkeypatch.setattr(torch, "compile", broken)
    code2, fallback, err = hem(capsys, *RUN, "--compile", "--out", str(tmp_path / "fallback"))
    assert code == code2 == 0
    assert err == ("hem: warning: torch.compile is not available here (RuntimeError: Compiler: cc not found); "
                   "training eagerly\n")
    assert result(eager)["history"][-1]["train_loss"] == result(fallback)["history"][-1]["train_loss"]
