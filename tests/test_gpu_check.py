"""bench/gpu_check.py --tiny (issue 29): the GPU check's code path, run here on the CPU at small sizes."""
from __future__ import annotations

import json
import math

import pytest

gpu_check = pytest.importorskip("bench.gpu_check")


@pytest.mark.slow
def test_the_tiny_gpu_check_measures_every_row_and_writes_them(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert gpu_check.main(["--tiny", "--device", "cpu", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    sizes = result["sizes"]
    rows = {(e["arch"], e["precision"], e["compiled"]) for e in result["epochs"] if "skipped" not in e}
    assert rows == {(arch, precision, compiled) for arch in sizes["archs"] for precision in gpu_check.PRECISIONS
                    for compiled in (False, True)}
    for epoch in [*result["epochs"], result["lenet_fashion_mnist_epoch"]]:
        assert epoch["images_per_s"] > 0 and math.isclose(epoch["images_per_s"] * epoch["epoch_s"], epoch["images"])
    assert result["lenet_fashion_mnist_epoch"]["images"] == sizes["lenet_images"] == 256
    shapes = {"x".join(map(str, shape)) for shape in sizes["loss_shapes"]}
    assert {(row["shape"], row["path"]) for row in result["losses"]} == {
        (shape, path) for shape in shapes for path in ("ce", "hem function", "hem fused")}
    assert all(row["vs_ce"] == 1.0 for row in result["losses"] if row["path"] == "ce")
    assert result["provenance"]["device"] == "cpu" and result["provenance"]["torch"]
    printed = capsys.readouterr().out
    assert "| resnet32 " in printed and "LeNet, Fashion-MNIST-shaped epoch" in printed
