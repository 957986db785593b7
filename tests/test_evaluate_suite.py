"""hemcli.evaluation.suite: how the evaluations are wired -- which sets are scored and grouped, what a
missing real set does, and that the DAR and calibration numbers in a result are the metrics of the
model's own logits (the metric functions themselves are tested in test_metrics.py)."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from hemcli.data import ArrayData
from hemcli.engine.device import DeviceManager
from hemcli.evaluation import suite
from hemcli.runs.spec import plan_run


class FirstPixels(torch.nn.Module):
    """Logits = 10 x the first C pixels of the image: a network whose outputs a test can choose."""

    def __init__(self, classes: int):
        super().__init__()
        self.classes = classes
        self.scale = torch.nn.Parameter(torch.tensor(10.0))

    def forward(self, x):
        return self.scale * x.flatten(1)[:, :self.classes]


def subject(dataset: str = "digits", root=None, sets=(), classes: int = 3, n: int = 40, **settings) -> suite.Subject:
    cfg = plan_run("classify", None, {"dataset.name": dataset, "dataset.root": root},
                   [*sets, *(f"evaluation.{k}={v}" for k, v in settings.items())], "results").cfg
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 8, 8, generator=gen)
    y = torch.randint(0, classes, (n,), generator=gen)
    data = ArrayData(x, y, x, y, num_classes=classes)
    return suite.Subject(FirstPixels(classes), data, cfg, DeviceManager.from_config({**cfg, "device": "cpu"}),
                         quiet=True)


def test_evaluation_names_run_clean_first_and_read_legacy_names():
    assert suite.evaluation_names(["attack", "ood"]) == ["clean", "ood", "attack"]
    assert suite.evaluation_names(["clean_accuracy"]) == ["clean"]


def test_ood_scores_each_set_and_averages_by_group():
    s = subject(ood_samples=50, scores="[msp,mls]")
    metrics, details, _ = suite.evaluate(s, ["ood"])
    per_set = details["ood"]["per_set"]
    assert set(details["ood"]["sets"]) == {"blobs", "uniform", "permuted", "phase"}
    for score in ("msp", "mls"):
        assert metrics[f"unknown_auroc_{score}_all"] == pytest.approx(np.mean([v["auroc"] for v in per_set[score].values()]))
        assert metrics[f"unknown_auroc_{score}_synthetic"] == metrics[f"unknown_auroc_{score}_all"]
    assert "unknown_auroc_msp_real" not in metrics  # digits has no real unknown set
    # one set recomputed from the model's logits with scikit-learn (known = 1)
    from hemcli.data.unknown import synthetic_set

    uniform = synthetic_set("uniform", s.data.test_x, n=50, seed=0)
    known = (10 * s.data.test_x.flatten(1)[:, :3]).max(1).values
    unknown = (10 * uniform.flatten(1)[:, :3]).max(1).values
    labels = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
    expected = 100 * roc_auc_score(labels, np.r_[known.numpy(), unknown.numpy()])
    assert per_set["mls"]["uniform"]["auroc"] == pytest.approx(expected)


def idx_images(path, images: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">iiii", 2051, len(images), 28, 28) + images.astype(np.uint8).tobytes())


def test_a_missing_real_set_is_skipped_with_a_warning_and_recorded(tmp_path, capsys):
    idx_images(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz",
               np.random.default_rng(0).integers(0, 256, (30, 28, 28)))
    s = subject("fashion-mnist", str(tmp_path), ood_samples=20, scores="[msp]")
    images, labels = torch.rand(20, 1, 28, 28), torch.arange(20) % 3
    s.data = ArrayData(images, labels, images, labels, num_classes=3)
    metrics, details, _ = suite.evaluate(s, ["ood"])
    mnist = details["ood"]["sets"]["mnist"]
    assert (mnist["group"], mnist["images"]) == ("real", 20) and "MNIST" in mnist["source"]
    assert set(details["ood"]["skipped"]) == {"omniglot", "kmnist"}
    assert metrics["unknown_auroc_msp_real"] == details["ood"]["per_set"]["msp"]["mnist"]["auroc"]
    err = capsys.readouterr().err
    assert "unknown set omniglot not found" in err and "unknown set kmnist not found" in err


def test_calibration_is_the_metrics_of_the_models_softmax():
    from hemcli.metrics import brier_score, expected_calibration_error, negative_log_likelihood

    s = subject()
    metrics, details, _ = suite.evaluate(s, ["calibration"])
    logits = 10 * s.data.test_x.flatten(1)[:, :3]
    assert metrics["ece"] == pytest.approx(100 * expected_calibration_error(logits.softmax(1), s.data.test_y))
    assert metrics["nll"] == pytest.approx(torch.nn.functional.cross_entropy(logits, s.data.test_y).item(), rel=1e-6)
    assert metrics["brier"] == pytest.approx(brier_score(logits.softmax(1), s.data.test_y))
    assert negative_log_likelihood(logits, s.data.test_y) == pytest.approx(metrics["nll"])


def test_dar_in_the_result_is_worked_out_from_clean_and_adversarial_logits(monkeypatch):
    """Clean test logits give MSP confidences; four attacked images come back with chosen logits.

    Clean: 40 images of 3 classes. The attack returns, for the attacked images, logits that make
    images 0 and 1 confident and 2 and 3 unsure, and only image 0 right: three of the four are
    handled correctly (DAR 75%), one is classified right (robust accuracy 25%). The threshold is
    the msp of the correct clean images at index ceil(0.95 k) - 1 of their descending order."""
    import math

    import hemcli.evaluation.attack as attack_module

    s = subject(attack_samples=4, attack_norms="[linf]")
    index = suite.attacked_subset(s)
    y = s.data.test_y[index]
    wrong = (y + 1) % 3
    adv = torch.full((4, 3), 0.0)
    adv[0, y[0]] = 50.0            # confident, right: accepted-right -> handled
    adv[1, wrong[1]] = 50.0        # confident, wrong: accepted-wrong -> not handled
    adv[2, wrong[2]] = 1e-3        # unsure, wrong: rejected-wrong -> handled
    adv[3, wrong[3]] = 2e-3        # unsure, wrong: rejected-wrong -> handled
    monkeypatch.setattr(attack_module, "run_autoattack", lambda *a, **k: {"logits": adv, "seconds": 0.0,
                                                                         "resumed_batches": 0, "robust": {}})
    metrics, details, _ = suite.evaluate(s, ["attack"])
    clean = (10 * s.data.test_x.flatten(1)[:, :3]).double()
    right = clean.argmax(1) == s.data.test_y
    conf = clean.softmax(1).max(1).values[right].sort(descending=True).values
    threshold = conf[math.ceil(0.95 * len(conf)) - 1].item()
    assert 1 / 3 + 2e-3 < threshold < 1.0  # so the chosen logits fall on the sides described above
    assert metrics["dar_msp_linf"] == pytest.approx(75.0)  # 3 of 4 handled
    assert metrics["robust_accuracy_linf"] == pytest.approx(25.0)
    assert details["attack"]["images"] == 4 and details["attack"]["norms"]["linf"]["eps"] == 0.3


def test_the_attacked_subset_is_seeded_and_the_same_for_every_run():
    first, second = subject(attack_samples=10), subject(attack_samples=10)
    assert torch.equal(suite.attacked_subset(first), suite.attacked_subset(second))
    other = subject(attack_samples=10, seed=1)
    assert not torch.equal(suite.attacked_subset(first), suite.attacked_subset(other))
    assert len(suite.attacked_subset(subject(attack_samples=1000))) == 40  # capped at the test set


@pytest.mark.parametrize("dataset, linf, l2", [("digits", 0.3, 0.571), ("fashion-mnist", 0.3, 2.0),
                                               ("mnist", 0.3, 2.0)])
def test_attack_budgets_are_the_papers(dataset, linf, l2):
    cfg = plan_run("classify", None, {"dataset.name": dataset}, [], "results").cfg
    assert (suite.attack_budget(cfg, "linf"), suite.attack_budget(cfg, "l2")) == (linf, l2)
    cfg["evaluation"]["attack_eps_l2"] = 1.5
    assert suite.attack_budget(cfg, "l2") == 1.5


def test_digits_heldout_scores_its_held_out_classes_as_a_real_unknown_set():
    from hemcli.data import load_dataset

    s = subject("digits-heldout", classes=6, ood_samples=100, scores="[msp]")
    s.data = load_dataset("digits-heldout")
    metrics, details, _ = suite.evaluate(s, ["ood"])
    held_out = details["ood"]["sets"]["held-out-classes"]
    assert (held_out["group"], held_out["images"]) == ("real", 100)
    assert metrics["unknown_auroc_msp_real"] == details["ood"]["per_set"]["msp"]["held-out-classes"]["auroc"]
    assert metrics["unknown_auroc_msp_all"] == pytest.approx(
        np.mean([v["auroc"] for v in details["ood"]["per_set"]["msp"].values()]))
