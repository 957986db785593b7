"""HEM loss forward+backward against ``F.cross_entropy`` on the same logits: time and peak memory ratios.

Time: both sides run in this process, interleaved (HEM, CE, CE, HEM, HEM, CE, ...) after a warm-up,
so that drift in the machine's speed (other jobs on a shared CPU) hits both alike; the ratio is
median(HEM) / median(CE). On CUDA every measurement is synchronised. Threads: as many as this
process may use (``os.sched_getaffinity``).

Peak memory: the most bytes alive at once during one forward+backward, over what existed before
(logits and targets), the gradient written into ``logits.grad`` included.
- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
- CPU: PyTorch keeps no CPU allocation statistics, so each measurement runs in a fresh subprocess
  that (1) makes glibc serve every allocation >= 64 KiB by mmap and return it on free
  (``mallopt(M_MMAP_THRESHOLD)``), so that resident memory follows the live tensors; (2) runs one
  untimed warm-up pass for lazy initialisation; (3) resets the kernel's resident-size high-water mark
  (``/proc/self/clear_refs`` <- 5) and reads VmRSS; (4) runs forward+backward once and reads VmHWM.
  Peak = VmHWM - VmRSS. The kernel samples exactly (page-level), so no sampling thread can miss a
  short-lived tensor; the resolution is a page, far below the megabytes measured. Linux only; elsewhere
  the memory ratio is NaN.

    python -m bench.bench_losses            # prints a small table
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHAPES = ((512, 1000), (4, 12, 360, 480))
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter numbers
_M_TRIM_THRESHOLD = -1


def _inputs(shape, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=gen).to(device).requires_grad_()
    targets = torch.randint(0, shape[1], (shape[0],) + tuple(shape[2:]), generator=gen).to(device)
    return logits, targets


def _loss_fns(num_classes: int, imbalanced: bool):
    from hemcli.losses import build_loss

    counts = list(range(1, num_classes + 1)) if imbalanced else [1] * num_classes
    hem = build_loss("hem", num_classes=num_classes, class_counts=counts)
    return {"hem": hem, "ce": F.cross_entropy}


def _step(loss_fn, logits, targets):
    loss_fn(logits, targets).backward()
    logits.grad = None


def _timed(loss_fn, logits, targets) -> float:
    sync = torch.cuda.synchronize if logits.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    _step(loss_fn, logits, targets)
    sync()
    return time.perf_counter() - start


def _peak_bytes_cuda(loss_fn, logits, targets) -> int:
    _step(loss_fn, logits, targets)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    loss_fn(logits, targets).backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    logits.grad = None
    return peak


def _proc_status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_bytes_in_this_process(which: str, shape, imbalanced: bool = False) -> int:
    """CPU peak of one forward+backward (see the module docstring); meant for a fresh process."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
    libc.mallopt(_M_TRIM_THRESHOLD, 64 * 1024)
    logits, targets = _inputs(shape, "cpu")
    loss_fn = _loss_fns(shape[1], imbalanced)[which]
    _step(loss_fn, logits, targets)
    Path("/proc/self/clear_refs").write_text("5")
    before = _proc_status_bytes("VmRSS")
    loss_fn(logits, targets).backward()
    return _proc_status_bytes("VmHWM") - before


def _peak_bytes_cpu(which: str, shape, imbalanced: bool, threads: int) -> float:
    code = ("import sys, torch; sys.path.insert(0, sys.argv[1]); torch.set_num_threads(int(sys.argv[2]));"
            "from bench.bench_losses import peak_bytes_in_this_process as f;"
            "print(f(sys.argv[3], tuple(map(int, sys.argv[4].split(','))), sys.argv[5] == '1'))")
    args = [sys.executable, "-c", code, str(ROOT), str(threads), which, ",".join(map(str, shape)),
            "1" if imbalanced else "0"]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=True)
        return float(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return math.nan


def bench_hem(shapes=DEFAULT_SHAPES, repeats: int = 40, warmup: int = 3, device: str | None = None,
              imbalanced: bool = False) -> list[dict]:
    """One dict per shape: what, shape, device, hem_ms, ce_ms, time_ratio, time_ratio_best, hem_bytes,
    ce_bytes, memory_ratio. ``time_ratio`` compares medians; ``time_ratio_best`` the fastest runs of each
    side, i.e. without the page faults and cache misses that fresh allocations bring on a busy CPU.

    HEM is ``build_loss('hem', ...)`` with balanced counts (one shared margin), or counts 1..C with
    ``imbalanced`` (per-class margins).
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if device == "cpu":
        torch.set_num_threads(threads)
    results = []
    for shape in shapes:
        logits, targets = _inputs(shape, device)
        fns = _loss_fns(shape[1], imbalanced)
        times = {name: [] for name in fns}
        for i in range(warmup + repeats):
            order = list(fns.items()) if i % 2 else list(fns.items())[::-1]  # neither side always runs first
            for name, fn in order:
                elapsed = _timed(fn, logits, targets)
                if i >= warmup:
                    times[name].append(elapsed)
        if device == "cpu":
            peak = {name: _peak_bytes_cpu(name, shape, imbalanced, threads) for name in fns}
        else:
            peak = {name: _peak_bytes_cuda(fn, logits, targets) for name, fn in fns.items()}
        hem_s, ce_s = statistics.median(times["hem"]), statistics.median(times["ce"])
        results.append({
            "what": f"hem loss fwd+bwd {'x'.join(map(str, shape))} vs F.cross_entropy",
            "shape": tuple(shape), "device": device,
            "hem_ms": hem_s * 1e3, "ce_ms": ce_s * 1e3, "time_ratio": hem_s / ce_s,
            "time_ratio_best": min(times["hem"]) / min(times["ce"]),
            "hem_bytes": peak["hem"], "ce_bytes": peak["ce"],
            "memory_ratio": peak["hem"] / peak["ce"] if peak["ce"] else math.nan,
        })
    return results


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--imbalanced", action="store_true", help="per-class margins (counts 1..C)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = bench_hem(repeats=args.repeats, imbalanced=args.imbalanced)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {rows[0]['device']}")
    print(f"{'shape':<18} {'hem ms':>9} {'ce ms':>9} {'time x':>7} {'best x':>7} {'hem MB':>8} {'ce MB':>8} "
          f"{'mem x':>6}")
    for r in rows:
        print(f"{'x'.join(map(str, r['shape'])):<18} {r['hem_ms']:9.3f} {r['ce_ms']:9.3f} {r['time_ratio']:7.2f} "
              f"{r['time_ratio_best']:7.2f} {r['hem_bytes'] / 2**20:8.1f} {r['ce_bytes'] / 2**20:8.1f} "
              f"{r['memory_ratio']:6.2f}")


if __name__ == "__main__":
    main()
