"""One script for a lent GPU (issue 29): what hem's training costs there, printed and written as JSON.

    python -m bench.gpu_check --out gpu_check.json          # on a GPU machine: at most ~8 minutes
    python -m bench.gpu_check --tiny --out /tmp/check.json  # any machine, seconds (make test runs it)

Measures, on the device ``--device`` picks (default: CUDA when there is one):
1. images/s of one CIFAR-shaped training epoch (generated uint8 images, device-resident, crop+flip
   by ``TensorBatches``, SGD, CE) for resnet18 and resnet32, in fp32 and in bf16 autocast with
   channels_last, each eager and under ``torch.compile`` (compile time reported apart: the first
   steps are timed alone, then the epoch);
2. forward+backward time of HEM against ``F.cross_entropy`` at 512x1000 and 4x12x360x480 logits, for
   each HEM path (``function``: the hand-written autograd Function; ``fused``: hemcli/losses/fused.py
   compiled, CUDA's default);
3. one Fashion-MNIST-shaped LeNet epoch (60 000 28x28 images, batch 128, Adam, HEM).

``--tiny`` shrinks every size (and compiles with the ``eager`` backend, which traces but generates no
code) so that the whole script runs on a CPU in seconds: the code path is the one a GPU run takes.
For scale: a public figure for a ResNet-18 at 32x32 on an A100 is about 23 000 images/s.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

FULL = {"cifar_images": 50_000, "cifar_batch": 512, "loss_shapes": ((512, 1000), (4, 12, 360, 480)),
        "lenet_images": 60_000, "lenet_batch": 128, "loss_repeats": 20, "compile_backend": "inductor",
        "archs": ("resnet18", "resnet32")}
TINY = {"cifar_images": 4, "cifar_batch": 2, "loss_shapes": ((16, 10), (2, 3, 8, 12)),
        "lenet_images": 256, "lenet_batch": 64, "loss_repeats": 3, "compile_backend": "eager",
        "archs": ("resnet32",)}  # a resnet18 step at 32x32 takes seconds on a CPU
PRECISIONS = ("fp32", "bf16+channels_last")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _generated(n: int, shape: tuple[int, ...], classes: int, device: torch.device, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, classes, (n,), generator=generator)
    return x.to(device), y.to(device)


def train_epoch_rate(arch: str, precision: str, compiled: bool, sizes: dict, device: torch.device,
                     shape=(3, 32, 32), loss_name: str = "ce", optimizer: str = "sgd", batch=None,
                     images=None, augment: str = "crop_flip") -> dict:
    """images/s of one epoch after the first steps (timed apart: they hold compilation)."""
    from hemcli.engine.batches import TensorBatches
    from hemcli.losses import build_loss
    from hemcli.models import build_model

    n, batch = images or sizes["cifar_images"], batch or sizes["cifar_batch"]
    x, y = _generated(n, shape, 10, device)
    torch.manual_seed(0)
    net = build_model(arch, shape, 10).to(device)
    last = precision.endswith("channels_last")
    if last:
        net = net.to(memory_format=torch.channels_last)
    model = torch.compile(net, backend=sizes["compile_backend"]) if compiled else net
    loss_fn = build_loss(loss_name, num_classes=10, class_counts=[n / 10] * 10)
    opt = (torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(net.parameters(), lr=1e-3))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision.startswith("bf16"))

    def step(xb, yb):
        if last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast:
            loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    net.train()
    batches = TensorBatches(x, y, batch, torch.Generator().manual_seed(1), augment=augment)
    first = time.perf_counter()
    for i, (xb, yb, _) in enumerate(batches):  # warm-up (and compilation): three steps
        step(xb, yb)
        if i == 2:
            break
    _sync(device)
    warm = time.perf_counter() - first
    begin = time.perf_counter()
    for xb, yb, _ in batches:
        step(xb, yb)
    _sync(device)
    seconds = time.perf_counter() - begin
    return {"arch": arch, "precision": precision, "compiled": compiled, "images": n, "batch": batch,
            "images_per_s": n / seconds, "epoch_s": seconds, "first_steps_s": warm}


def loss_times(sizes: dict, device: torch.device) -> list[dict]:
    """Median forward+backward seconds of HEM and CE on the same logits, the sides interleaved.

    HEM paths: ``function`` (the hand-written autograd Function, the CPU's) and ``fused`` (the
    plain-ops form compiled, CUDA's default); balanced classes: one margin, sqrt(M / S)."""
    from hemcli.losses import fused
    from hemcli.losses.functional import high_error_margin
    from hemcli.losses.margins import hem_margins

    fused.BACKEND = sizes["compile_backend"]
    rows = []
    for shape in sizes["loss_shapes"]:
        classes = shape[1]
        generator = torch.Generator().manual_seed(0)
        logits = torch.randn(shape, generator=generator).to(device).requires_grad_()
        targets = torch.randint(0, classes, (shape[0], *shape[2:]), generator=generator).to(device)
        margin = float(hem_margins([50_000 / classes] * classes, 2000.0, False))
        paths = {"ce": lambda z, t: F.cross_entropy(z, t),
                 "hem function": lambda z, t: high_error_margin(z, t, margin, path="function"),
                 "hem fused": lambda z, t: high_error_margin(z, t, margin, path="fused")}
        times = {name: [] for name in paths}
        for name, fn in paths.items():  # warm-up (compilation) untimed
            fn(logits, targets).backward()
        for _ in range(sizes["loss_repeats"]):
            for name, fn in paths.items():
                logits.grad = None
                _sync(device)
                tick = time.perf_counter()
                fn(logits, targets).backward()
                _sync(device)
                times[name].append(time.perf_counter() - tick)
        ce = statistics.median(times["ce"])
        for name in paths:
            seconds = statistics.median(times[name])
            rows.append({"shape": "x".join(map(str, shape)), "path": name, "ms": 1000 * seconds,
                         "vs_ce": seconds / ce})
        rows[-1]["fused_failed"] = list(fused._FAILED)
    return rows


def _say(text: str, began: float) -> None:
    print(f"[{time.perf_counter() - began:6.1f} s] {text}", file=sys.stderr, flush=True)


def run(tiny: bool = False, device: str = "auto", compile_too: bool = True, budget_s: float = 420.0,
        save=lambda result: None) -> dict:
    """Every measurement, cheapest first; ``save(result so far)`` after each. Compiled epochs that
    would start after ``budget_s`` seconds are left out (recorded as skipped), so that the whole
    script stays within a device lease."""
    from hemcli.engine.device import DeviceManager, pick_device
    from hemcli.runs.record import environment

    sizes = TINY if tiny else FULL
    dev = pick_device(device)
    began = time.perf_counter()
    result = {"what": "bench/gpu_check.py", "tiny": tiny, "sizes": dict(sizes), "epochs": [],
              "provenance": environment(DeviceManager(dev).describe())}
    configs = [(arch, precision, False) for arch in sizes["archs"] for precision in PRECISIONS]
    lenet = train_epoch_rate("lenet", "fp32", False, sizes, dev, shape=(1, 28, 28), loss_name="hem",
                             optimizer="adam", batch=sizes["lenet_batch"], images=sizes["lenet_images"],
                             augment="none")
    result["lenet_fashion_mnist_epoch"] = lenet
    _say(f"lenet: {lenet['images_per_s']:,.0f} images/s", began)
    result["losses"] = loss_times(sizes, dev)
    _say("losses timed", began)
    save(result)
    if compile_too:
        configs += [(arch, precision, True) for arch, precision, _ in configs]
    for arch, precision, compiled in configs:
        elapsed = time.perf_counter() - began
        if compiled and elapsed > budget_s:
            result["epochs"].append({"arch": arch, "precision": precision, "compiled": True,
                                     "skipped": f"budget: {elapsed:.0f} s > {budget_s:.0f} s"})
            continue
        result["epochs"].append(train_epoch_rate(arch, precision, compiled, sizes, dev))
        _say(f"{arch} {precision}{' compiled' if compiled else ''}: "
             f"{result['epochs'][-1]['images_per_s']:,.0f} images/s", began)
        result["seconds"] = time.perf_counter() - began
        save(result)
    result["seconds"] = time.perf_counter() - began
    return result


def table(result: dict) -> str:
    from tabulate import tabulate

    epochs = [[e["arch"], e["precision"], "yes" if e["compiled"] else "no",
               e["skipped"] if "skipped" in e else f"{e['images_per_s']:,.0f}",
               "" if "skipped" in e else f"{e['first_steps_s']:.1f}"] for e in result["epochs"]]
    lenet = result["lenet_fashion_mnist_epoch"]
    losses = [[row["shape"], row["path"], f"{row['ms']:.3f}", f"{row['vs_ce']:.2f}x"] for row in result["losses"]]
    return "\n\n".join([
        tabulate(epochs, ["arch (CIFAR-shaped)", "precision", "compiled", "images/s", "first 3 steps s"],
                 tablefmt="github"),
        f"LeNet, Fashion-MNIST-shaped epoch (HEM, Adam, batch {lenet['batch']}): "
        f"{lenet['images_per_s']:,.0f} images/s, {lenet['epoch_s']:.2f} s",
        tabulate(losses, ["logits", "loss", "fwd+bwd ms", "vs CE"], tablefmt="github"),
        f"device: {result['provenance'].get('gpu') or result['provenance']['device']}; "
        f"{result['seconds']:.0f} s in all"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="small sizes: seconds on a CPU (make test)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when there is one), cuda, cpu")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="the JSON written")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="start no compiled epoch after this many seconds (default 420)")
    args = parser.parse_args(argv)
    from hemcli.fileio import write_json_atomic

    result = run(args.tiny, args.device, compile_too=not args.no_compile, budget_s=args.budget_s,
                 save=lambda partial: write_json_atomic(args.out, partial))
    print(table(result))
    write_json_atomic(args.out, result)
    print(f"written: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
