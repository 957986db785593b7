"""``hem segment``: the task end to end on the generated shapes, padding and cropping back, pixel
accuracy without ignored pixels, resume, recipes, and bad input (one line, exit 2, nothing written)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import fakeseg
from conftest import needs_shared
from hemcli.cli import main
from hemcli.data.segmentation import SegmentationData, load_shapes
from hemcli.engine.device import DeviceManager
from hemcli.errors import HemError
from hemcli.recipes import resolve
from hemcli.tasks import segment

RECIPES = Path(__file__).resolve().parents[1] / "hemcli" / "recipes" / "segment"


@pytest.fixture(autouse=True)
def hem_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HEM_CACHE", str(tmp_path / "cache"))


def config(**sets) -> dict:
    cfg = resolve(segment.schema(), "segment", None, {"device": "cpu"})
    for key, value in sets.items():
        part, _, leaf = key.rpartition(".")
        (cfg[part] if part else cfg)[leaf] = value
    return cfg


def iou_by_hand(matrix) -> float:
    """Mean IoU (%) of a confusion matrix: TP / (TP + FP + FN) per class with any pixel, averaged."""
    m = np.asarray(matrix, dtype=float)
    tp, union = np.diag(m), m.sum(0) + m.sum(1) - np.diag(m)
    return 100 * float(np.mean(tp[union > 0] / union[union > 0]))


def majority_iou(masks: torch.Tensor, classes: int, ignore: int) -> float:
    """The mean IoU of predicting the most frequent class everywhere: chance for this test set."""
    valid = masks[masks != ignore]
    share = torch.bincount(valid, minlength=classes).max().item() / len(valid)
    return 100 * share / classes  # that class's IoU is its share; every other class scores 0


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "dice", "hem"])
def test_shapes_end_to_end_is_well_above_chance(loss):
    cfg = config(**{"loss.name": loss, "dataset.limit": 128, "epochs": 3, "validate": False})
    result = segment.run(cfg, quiet=True)
    miou = result["metrics"]["mean_iou"]
    assert miou == pytest.approx(iou_by_hand(result["segmentation"]["confusion_matrix"]), abs=1e-9)
    test = load_shapes(None, "test").limited(128)
    chance = majority_iou(test.masks, 4, 255)
    assert chance == pytest.approx(19.6, abs=1.0)
    assert miou > chance + 30, f"{loss}: mean IoU {miou:.1f}, chance {chance:.1f}"
    assert sum(map(sum, result["segmentation"]["confusion_matrix"])) == (test.masks != 255).sum().item()


class RedIsClassZero(nn.Module):
    """Logits that say class 0 where the red channel is above 0.5, class 1 elsewhere (the padding too)."""

    def forward(self, x):
        red = (x[:, 0] > 0.5).float()
        return torch.stack([red, 1 - red, torch.zeros_like(red)], 1) * 10


def test_predictions_are_cropped_back_and_every_pixel_lands_where_it_was():
    masks = torch.randint(0, 2, (3, 20, 30))
    masks[0, :2] = 9  # ignored pixels
    images = torch.zeros(3, 3, 20, 30, dtype=torch.uint8)
    images[:, 0] = (masks == 0).to(torch.uint8) * 255
    data = SegmentationData(3, 9, images, masks)
    info = type("Info", (), {"num_classes": 3, "ignore_index": 9})
    matrix = segment.confusion(RedIsClassZero(), data, info, DeviceManager(torch.device("cpu")),
                               {"eval_batch_size": 2, "dataset": {"workers": 0}})
    zeros, ones = (masks == 0).sum().item(), (masks == 1).sum().item()
    assert matrix.tolist() == [[zeros, 0, 0], [0, ones, 0], [0, 0, 0]]


def test_train_pixel_accuracy_leaves_out_ignored_pixels():
    from hemcli.engine.batches import TensorBatches
    from hemcli.losses import build_loss
    from hemcli.engine.loop import train_epoch

    masks = torch.tensor([[[0, 1], [1, 7]], [[7, 7], [0, 0]]])  # 7 ignored: 5 counted pixels
    images = torch.zeros(2, 3, 2, 2)
    images[:, 0] = 1.0  # the network below calls every pixel class 0: right on the 3 zeros of 5
    net = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        net.weight.zero_()
        net.weight[0, 0] = 1.0
        net.bias.zero_()
    batches = TensorBatches(images, masks, 2, torch.Generator().manual_seed(0))
    _, accuracy = train_epoch(net, build_loss("ce", num_classes=2, ignore_index=7), batches,
                              torch.optim.SGD(net.parameters(), lr=0.0), DeviceManager(torch.device("cpu")),
                              ignore_index=7)
    assert accuracy == pytest.approx(100 * 3 / 5)


def test_a_killed_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    from hemcli.progress import Progress

    cfg = config(**{"loss.name": "hem", "dataset.limit": 16, "epochs": 3})
    straight = segment.run(cfg, quiet=True)
    original = Progress.epoch

    def killed_after_two(self, epoch, seconds, **metrics):
        original(self, epoch, seconds, **metrics)
        if epoch == 2:
            raise KeyboardInterrupt

    checkpoint = tmp_path / "run.ckpt.pt"
    monkeypatch.setattr(Progress, "epoch", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        segment.run(cfg, checkpoint=checkpoint, quiet=True)
    monkeypatch.setattr(Progress, "epoch", original)
    resumed = segment.run(cfg, checkpoint=checkpoint, resume=True, quiet=True)
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in straight["history"]]
    assert resumed["metrics"] == straight["metrics"]


# The table of Appendix B.4.4: (lr, batch, epochs) per dataset
PAPER = {"camvid": (0.1, 12, 100), "cityscapes": (0.1, 4, 50), "sbd": (0.05, 4, 50), "ade20k": (0.05, 4, 20)}
ENCODERS = ("resnet34", "efficientnet-b4", "densenet201", "resnext50_32x4d")


@pytest.mark.parametrize("dataset", PAPER)
@pytest.mark.parametrize("encoder", ENCODERS)
def test_each_paper_recipe_is_table_7s(dataset, encoder):
    from hemcli.runs.spec import plan_run

    spec = plan_run("segment", None, {"dataset.name": dataset, "model.encoder": encoder}, [], "out")
    cfg = spec.cfg
    assert (cfg["optim"]["lr"], cfg["batch_size"], cfg["epochs"]) == PAPER[dataset]
    assert (cfg["optim"]["name"], cfg["optim"]["momentum"], cfg["schedule"]["name"]) == ("sgd", 0.9, "constant")
    assert (cfg["model"]["arch"], cfg["model"]["encoder"], cfg["model"]["encoder_weights"]) == ("fpn", encoder, None)
    assert spec.name.startswith(f"segment/{dataset}/{encoder}/hem/")
    assert (RECIPES / f"{dataset}-{encoder}.yaml").is_file()


@pytest.mark.parametrize("encoder", ENCODERS)
def test_each_paper_encoder_builds_an_fpn_that_keeps_the_input_size(encoder):
    from hemcli.models.segmentation import build_segmenter

    net = build_segmenter("fpn", encoder, 11).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 64, 96)).shape == (1, 11, 64, 96)


def test_encoder_weights_that_cannot_be_fetched_are_one_line(monkeypatch):
    import segmentation_models_pytorch as smp

    def offline(**kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")  # what the hub raises, in short

    monkeypatch.setattr(smp, "FPN", offline)
    from hemcli.models.segmentation import build_segmenter
    with pytest.raises(HemError, match="cannot load imagenet weights for encoder resnet34: .*network"):
        build_segmenter("fpn", "resnet34", 11, "imagenet")


def test_real_camvid_half_one_epoch(tmp_path, capsys):
    root = needs_shared("camvid_half")
    code = main(["segment", "--dataset", "camvid", "--data-root", str(root), "--epochs", "1", "--batch-size", "2",
                 "--set", "dataset.limit=4", "--set", "validate=false", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    [path] = tmp_path.rglob("seed0.json")
    result = json.loads(path.read_text())
    assert result["environment"]["test_split"] == "test"
    assert len(result["segmentation"]["per_class_iou"]) == 11  # void (11) is no class
    assert result["environment"]["class_pixel_counts"][3] > 0  # road, counted over all 367 training images
    assert sum(map(sum, result["segmentation"]["confusion_matrix"])) <= 4 * 180 * 240


def camvid_with(tmp_path, damage) -> Path:
    base = tmp_path / "CamVid"
    fakeseg.camvid_tree(base)
    label = sorted((base / "trainannot").iterdir())[0]
    damage(label)
    return tmp_path


def _wrong_size(label: Path):
    fakeseg.write_png(label, np.zeros((5, 5), dtype=np.uint8))


def _out_of_range(label: Path):
    fakeseg.write_png(label, np.full((8, 12), 40, dtype=np.uint8))


@pytest.mark.parametrize("damage, words", [(_wrong_size, "is 5x5"), (_out_of_range, "40")])
def test_bad_masks_are_one_line_naming_the_file_and_nothing_is_written(tmp_path, capsys, damage, words):
    root = camvid_with(tmp_path / "data", damage)
    out = tmp_path / "out"
    code = main(["segment", "--dataset", "camvid", "--data-root", str(root), "--epochs", "1", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and words in err[0] and ".png" in err[0], err
    assert not out.exists() or not any(out.rglob("*"))


@pytest.mark.parametrize("args, words", [
    (["--encoder", "vgg99"], "unknown model.encoder 'vgg99'; valid choices: resnet34, efficientnet-b4"),
    (["--dataset", "pascal"], "dataset.name"),
    (["--set", "augment.crop=[100,100]"], "multiples of 32"),
    (["--set", "model.encoder_weights=places"], "model.encoder_weights"),
    (["--loss", "hem", "--set", "loss.params.M=-1"], "M"),
])
def test_bad_options_are_one_line(tmp_path, capsys, args, words):
    code = main(["segment", *args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "out").exists()


def test_the_command_trains_what_run_trains(tmp_path):
    """The command calls setup (which builds the network) before run: both must start from the seed."""
    sets = {"loss.name": "ce", "dataset.limit": 16, "epochs": 1, "validate": False, "seed": 3}
    direct = segment.run(config(**sets), quiet=True)
    code = main(["segment", "--loss", "ce", "--epochs", "1", "--seed", "3", "--device", "cpu", "--set", "dataset.limit=16",
                 "--set", "validate=false", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    [path] = tmp_path.rglob("seed3.json")
    assert json.loads(path.read_text())["history"][0]["train_loss"] == direct["history"][0]["train_loss"]
