"""`hem classify` epoch time against a bare PyTorch loop, and `hem --help` start-up time.

Both are ratios measured in the same process run, alternating the two sides so that drift in the
machine's speed hits both alike; medians over repeats.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def bare_loop(model, x, y, epochs, batch_size, lr, seed):
    """The reference: the shortest honest training loop, ~20 lines, timed per epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def bench_epoch(dataset="digits", arch="lenet", epochs=10, rounds=8) -> dict:
    from hemcli.data import load_dataset
    from hemcli.models import build_model
    from hemcli.recipes import resolve
    from hemcli.tasks import classify

    cfg = resolve(classify.schema(), "classify", sets=[f"dataset.name={dataset}", f"model.arch={arch}",
                                                       "loss.name=ce", f"epochs={epochs}", "device=cpu"])
    data = load_dataset(dataset)
    hem_times, bare_times = [], []

    def run_hem():
        result = classify.run(cfg, quiet=True)
        hem_times.extend([h["seconds"] for h in result["history"]][1:])  # the first epoch warms up

    def run_bare():
        torch.manual_seed(cfg["seed"])
        model = build_model(arch, data.input_shape, data.num_classes)
        bare_times.extend(bare_loop(model, data.train_x, data.train_y, epochs, cfg["batch_size"],
                                    cfg["optim"]["lr"], cfg["seed"])[1:])

    for i in range(rounds):  # neither side always runs first
        for side in ((run_hem, run_bare) if i % 2 else (run_bare, run_hem)):
            side()
    hem_s, bare_s = statistics.median(hem_times), statistics.median(bare_times)
    return {"what": f"classify epoch ({dataset}, {arch}, ce)", "hem_s": hem_s, "reference_s": bare_s,
            "ratio": hem_s / bare_s, "target": 1.05}


def _wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def bench_startup(repeats=10) -> dict:
    help_cmd = [sys.executable, "-m", "hemcli", "--help"]
    typer_cmd = [sys.executable, "-c", "import typer"]
    _wall(help_cmd), _wall(typer_cmd)
    pairs = [(_wall(help_cmd), _wall(typer_cmd)) for _ in range(repeats)]
    hem_s = statistics.median(p[0] for p in pairs)
    ref_s = statistics.median(p[1] for p in pairs)
    return {"what": "hem --help start-up", "hem_s": hem_s, "reference_s": ref_s,
            "ratio": hem_s / ref_s, "target": 1.5}
