"""The setting a report is about, in one line for titles: what the rows share (task, dataset,
network...), how many runs each condition has, and their seeds."""
from __future__ import annotations

from hemcli.report.table import MISSING, Row
from hemcli.runs.condition import spell

# the columns that name the setting where every row has the same value, in this order
SETTING_COLUMNS = ("task", "dataset", "benchmark", "scenario", "strategy", "arch", "encoder")


def seed_ranges(seeds) -> str:
    """``0-2, 5`` for seeds 0, 1, 2, 5: runs of consecutive integers as ranges (with an en dash)."""
    numbers = sorted({seed for seed in seeds if isinstance(seed, int) and not isinstance(seed, bool)})
    others = sorted({spell(seed) for seed in seeds if seed not in numbers})
    runs: list[list[int]] = []
    for seed in numbers:
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    parts = [str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}" for run in runs]
    return ", ".join(parts + others)


def _runs(rows: list[Row]) -> str:
    counts = sorted({row.runs for row in rows})
    runs = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    text = f"n = {runs} run{'s' if counts[-1] != 1 else ''} per condition"
    if len({row.seeds for row in rows}) == 1 and rows[0].seeds:  # every condition ran the same seeds
        seeds = rows[0].seeds
        return f"{text} (seeds {seed_ranges(seeds)})" if len(seeds) > 1 else f"{text} (seed {spell(seeds[0])})"
    every = [seed for row in rows for seed in row.seeds]
    return f"{text} (seeds {seed_ranges(every)} in all)" if every else text


def setting(rows: list[Row]) -> str:
    """``classify · digits · lenet · n = 3 runs per condition (seeds 0–2)``: the shared column values,
    the run count and the seeds."""
    if not rows:
        return ""
    parts = []
    for column in SETTING_COLUMNS:
        values = [row.columns.get(column, MISSING) for row in rows]
        if MISSING not in values and len({spell(value) for value in values}) == 1:
            parts.append(spell(values[0]))
    return " · ".join(parts + [_runs(rows)])
