"""``hem longtail``: the subset reaches the losses, oversampling balances the classes, and the
offline default runs end to end for ce, la, hem- and hem with the shot groups reported."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from hemcli.engine.batches import TensorBatches, epoch_order
from hemcli.cli import main
from hemcli.data import load_digits
from hemcli.losses import build_loss
from hemcli.recipes import resolve
from hemcli.tasks import longtail


def test_la_with_uniform_counts_is_ce_and_hem_with_uniform_counts_is_hem_minus():
    """A uniform prior shifts every logit alike (softmax ignores it); equal per-class margins
    sqrt(M / (C s)) are HEM-'s shared margin sqrt(M / (C s)) for a set of C s samples."""
    torch.manual_seed(0)
    logits, targets = torch.randn(64, 10) * 3, torch.randint(0, 10, (64,))
    uniform = [500] * 10
    la = build_loss("la", num_classes=10, class_counts=uniform)
    assert torch.allclose(la(logits, targets), F.cross_entropy(logits, targets), atol=1e-6)
    hem = build_loss("hem", num_classes=10, class_counts=uniform)
    hem_minus = build_loss("hem-", num_classes=10, class_counts=uniform)
    assert torch.allclose(hem(logits, targets), hem_minus(logits, targets), atol=1e-6)
    skewed = build_loss("hem", num_classes=10, class_counts=[5000, 3000, 1800, 1080, 648, 388, 233, 139, 83, 50])
    assert not torch.allclose(skewed(logits, targets), hem_minus(logits, targets), atol=1e-3)


def test_oversampling_draws_every_class_as_often_as_the_largest():
    labels = torch.tensor([0] * 7 + [1] * 3 + [2] * 1)
    order = epoch_order(labels, torch.Generator().manual_seed(0), balanced=True)
    assert torch.bincount(labels[order]).tolist() == [7, 7, 7]
    # class 1: each of its 3 samples twice (7 = 2 * 3 + 1), and one of them once more
    seen = torch.bincount(order[labels[order] == 1], minlength=11)[7:10].tolist()
    assert sorted(seen) == [2, 2, 3] and torch.bincount(order[labels[order] == 0]).tolist() == [1] * 7
    batches = TensorBatches(torch.zeros(11, 1), labels, 4, torch.Generator().manual_seed(0), balanced=True)
    assert len(batches) == 6 and sum(len(y) for _, y, _ in batches) == 21


def test_factor_from_imbalance_or_given():
    cfg = resolve(longtail.schema(), "longtail", None, {"longtail.imbalance": 100.0})
    assert longtail.factor(cfg, 10) == pytest.approx(100 ** (-1 / 9))
    cfg = resolve(longtail.schema(), "longtail", None, {}, ["longtail.factor=0.6"])
    assert longtail.factor(cfg, 10) == 0.6


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "la", "hem-", "hem"])
def test_digits_imbalance_10_end_to_end(tmp_path, loss):
    out = tmp_path / "results"
    assert main(["longtail", "--loss", loss, "--imbalance", "10", "--epochs", "5", "--out", str(out), "--quiet"]) == 0
    [path] = out.rglob("seed0.json")
    result = json.loads(path.read_text())
    counts = result["longtail"]["class_counts"]
    digits = load_digits()
    full, tested = torch.bincount(digits.train_y).tolist(), torch.bincount(digits.test_y).tolist()
    assert counts == [math.floor(s * 10 ** (-j / 9) + 1e-9) for j, s in enumerate(full)]  # floor(s_j f^j)
    assert result["environment"]["class_counts"] == counts and result["environment"]["train_size"] == sum(counts)
    assert 9 < result["longtail"]["imbalance"] < 11
    metrics = result["metrics"]
    assert {"clean_accuracy", "many_shot_accuracy", "medium_shot_accuracy", "few_shot_accuracy"} <= set(metrics)
    per_class = result["evaluation"]["shots"]["per_class_accuracy"]
    assert (metrics["class_9_accuracy"], metrics["class_8_accuracy"]) == (per_class[9], per_class[8])  # the rarest
    # the test set is the whole balanced one: its accuracy is the per-class accuracies weighted by class size
    assert sum(a * n for a, n in zip(per_class, tested)) / sum(tested) == pytest.approx(metrics["clean_accuracy"])
    if loss == "hem":  # per-class margins sqrt(M / (C s_j)) from the subset's counts
        margins = result["longtail"]["margins"]
        assert margins == pytest.approx([(2000 / (10 * s)) ** 0.5 for s in counts], rel=1e-6)


def test_imagenet_lt_from_its_list_files(tmp_path):
    import fakedata
    from hemcli.data import load_dataset

    fakedata.imagenet_tree(tmp_path, per_class=2)
    fakedata.imagenet_lt_lists(tmp_path)
    data = load_dataset("imagenet-lt", str(tmp_path))
    assert data.class_counts() == [2, 1] and data.num_classes == 2
    assert data.test_y.tolist() == [0, 0, 1, 1]
    image, label = data.train[2]
    assert image.shape == (3, 224, 224) and label == 1


def test_shots_by_hand():
    """Training counts 150 / 50 / 10 make classes 0, 1, 2 many-, medium- and few-shot; predictions
    0,1 | 1,1 | 0,2 for labels 0,0 | 1,1 | 2,2 are 50%, 100% and 50% right."""
    from types import SimpleNamespace

    from hemcli.evaluation.suite import shots

    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = F.one_hot(torch.tensor([0, 1, 1, 1, 0, 2]), 3).float()
    data = SimpleNamespace(test_y=labels, class_counts=lambda: [150, 50, 10])
    metrics, record = shots(SimpleNamespace(test_logits=logits, data=data))
    assert metrics == {"class_2_accuracy": 50.0, "class_1_accuracy": 100.0, "many_shot_accuracy": 50.0,
                       "medium_shot_accuracy": 100.0, "few_shot_accuracy": 50.0}
    assert record["per_class_accuracy"] == [50.0, 100.0, 50.0] and record["empty_groups"] == []
    _, record = shots(SimpleNamespace(test_logits=logits, data=SimpleNamespace(test_y=labels,
                                                                               class_counts=lambda: [50, 50, 30])))
    assert record["empty_groups"] == ["many", "few"]


def test_an_empty_shot_group_is_named(tmp_path, capsys):
    """digits with imbalance 2 keeps 142 down to 72 a class: many- and medium-shot classes, no few-shot one."""
    assert main(["longtail", "--imbalance", "2", "--epochs", "1", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "no few-shot class (fewer than 20 training samples) in this subset, so no few_shot_accuracy" in err
    [path] = tmp_path.rglob("seed0.json")
    result = json.loads(path.read_text())
    assert result["evaluation"]["shots"]["empty_groups"] == ["few"] and "few_shot_accuracy" not in result["metrics"]
    assert min(result["longtail"]["class_counts"]) >= 20


def test_hem_evaluate_measures_a_longtail_run_on_its_own_subset(tmp_path):
    """Measured again, the shot groups come from the long-tailed counts, so the numbers repeat the run's."""
    out = tmp_path / "results"
    assert main(["longtail", "--imbalance", "10", "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    [path] = out.rglob("seed0.json")
    first = json.loads(path.read_text())
    assert main(["evaluate", str(path), "--eval", "shots,calibration", "--quiet"]) == 0
    again = json.loads(path.read_text())
    for name in ("many_shot_accuracy", "medium_shot_accuracy", "few_shot_accuracy", "class_9_accuracy"):
        assert again["metrics"][name] == first["metrics"][name]
    assert "ece" in again["metrics"] and again["evaluation"]["shots"]["groups"] == first["evaluation"]["shots"]["groups"]
