"""Shared fixtures: where the real data lies (../shared/data beside the checkout), skipped if absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HEM_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs ``-n auto``) each worker takes its share of the cores:
    torch's threads of two workers on two cores would otherwise wait on each other at every op. The
    subprocesses tests start (hem commands, sweep workers) inherit the same share."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA}")
    return SHARED_DATA


def needs_shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not present at {path}")
    return path


def planned_result(out, flags: dict | None = None, sets=()) -> Path:
    """Where `hem classify` writes the run these recipe keys (dotted, as --set takes them) describe."""
    from hemcli.runs.spec import plan_run

    return plan_run("classify", None, flags or {}, list(sets), out).path


def smoke_run(task: str, recipe, data_root, out, evals: str) -> tuple[int, dict]:
    """One epoch of a paper recipe on generated data: a few images (two for the 224x224 networks, one
    step on a CPU), batch 4, no DataLoader workers; returns (the image limit, the result)."""
    import json

    from hemcli.cli import main

    limit = 2 if Path(recipe).stem.startswith("imagenet") else 6
    code = main([task, "--recipe", str(recipe), "--data-root", str(data_root), "--epochs", "1", "--batch-size", "4",
                 "--eval", evals, "--set", f"dataset.limit={limit}", "--set", "dataset.workers=0",
                 "--out", str(out), "--quiet"])
    assert code == 0
    [path] = Path(out).rglob("seed0.json")
    return limit, json.loads(path.read_text())
