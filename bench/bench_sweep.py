"""`hem sweep` parallel speed-up: 8 short digits runs with --jobs 2 against --jobs 1, wall time of the
whole command (planning, workers, runs, report), the two sides alternating; medians over rounds."""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

RUNS = "0-7"


def _sweep_seconds(jobs: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hemcli", "sweep", "classify", "--loss", "ce", "--seed", RUNS,
                        "--device", "cpu", "--jobs", str(jobs), "--out", out, "--quiet"],
                       check=True, capture_output=True)
        return time.perf_counter() - start


def bench_sweep(rounds: int = 2) -> dict:
    serial, parallel = [], []
    for i in range(rounds):
        for jobs in ((1, 2) if i % 2 == 0 else (2, 1)):
            (serial if jobs == 1 else parallel).append(_sweep_seconds(jobs))
    serial_s, parallel_s = statistics.median(serial), statistics.median(parallel)
    return {"what": "hem sweep, 8 digits runs: --jobs 1 time / --jobs 2 time (higher is better)",
            "hem_s": parallel_s, "reference_s": serial_s, "ratio": serial_s / parallel_s, "target": 1.6}
