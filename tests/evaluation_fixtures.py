"""Fixtures the evaluation tests share (imported by tests/test_evaluate_cli.py and
tests/test_evaluate_external.py): fast AutoAttack, and a corruption cache of each module's own."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def fewer_square_queries(monkeypatch):
    """Square's 5000 queries over the images the gradient attacks left cost about a minute per batch
    on this CPU; 100 keep the stage in the pipeline (tests/test_attack.py checks the real settings)."""
    import hemcli.evaluation.attack

    monkeypatch.setattr(hemcli.evaluation.attack, "SQUARE_QUERIES", 100)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """Generated corruptions go to a cache of this module's own, never to the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("hem-cache")
    old = os.environ.get("HEM_CACHE")
    os.environ["HEM_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("HEM_CACHE", None)
    else:
        os.environ["HEM_CACHE"] = old
