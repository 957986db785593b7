"""`hem report --plot FILE.png`: each loss's difference to its matched CE condition, per metric, with
the 95% confidence interval, as in the paper's Figs. 1-2.

One panel per metric that has a comparison; in it one horizontal error bar per compared row (the
difference ``delta`` with ``ci_low``..``ci_high`` from ``hemcli.report``; a point without a bar where
the interval is undefined), labelled by the loss and the keys that tell the rows apart (``hem M=500``),
with a line at 0. Rows from fewer than 3 runs on a side carry ``†``. The numbers drawn are the
report's own (``PlotPoint``), so the plot and the table cannot disagree.

matplotlib is imported only here and only when plotting, through ``Figure`` and the Agg canvas: no
pyplot, no global state, no display needed.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from hemcli.errors import HemError
from hemcli.report.table import CONFIDENCE, FEW_RUNS, FIXED_COLUMNS, MISSING, Row
from hemcli.runs.condition import spell
from hemcli.fileio import write_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NOTHING_TO_PLOT = "nothing to plot: no loss has a matched CE condition"


class PlotPoint(NamedTuple):
    """One error bar: ``delta`` of ``metric`` for the row named ``label``; the interval may be None."""

    metric: str
    label: str
    delta: float
    ci_low: float | None
    ci_high: float | None


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise HemError("--plot needs matplotlib: pip install matplotlib") from None


def check_plot_target(path: Path) -> None:
    """Everything that can be checked before the report is built: matplotlib, and a folder to write in."""
    _require_matplotlib()
    if path.is_dir():
        raise HemError(f"cannot write plot {path}: it is a folder")
    folder = path.parent
    if not folder.is_dir():
        raise HemError(f"cannot write plot {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HemError(f"cannot write plot {path}: the folder {folder} is not writable")


def _varies(name: str, rows: list[Row]) -> bool:
    return len({None if row.columns[name] is MISSING else spell(row.columns[name]) for row in rows}) > 1


def _label(row: Row, rows: list[Row]) -> str:
    """The row by its loss and the column values that tell it apart from the other plotted rows: a
    column after ``loss`` (the loss's own keys) only where it differs among rows of the same loss, so
    ``hem M=500`` and not ``hem M=500 margin=null`` beside ``focal gamma=2``."""
    names = list(row.columns)
    loss_keys = names[names.index("loss") + 1:]
    same_loss = [other for other in rows if other.columns["loss"] == row.columns["loss"]]
    parts = [spell(row.columns[name]) for name in ("task", "dataset", "arch") if _varies(name, rows)]
    parts.append(spell(row.columns["loss"]))
    for name, value in row.columns.items():
        if name in FIXED_COLUMNS or value is MISSING:
            continue
        if _varies(name, same_loss if name in loss_keys else rows):
            parts.append(f"{name}={spell(value)}")
    return " ".join(parts)


def plot_points(rows: list[Row]) -> list[PlotPoint]:
    """Every (metric, compared row) with a difference, metrics in column order, rows in table order."""
    compared = [row for row in rows if row.baseline == "matched"]
    labels = {id(row): _label(row, compared) for row in compared}
    points = []
    for metric in rows[0].metrics if rows else []:
        for row in compared:
            summary = row.metrics[metric]
            if summary is None or summary.delta is None or not math.isfinite(summary.delta):
                continue  # an infinite difference (values near 1e308) has no place on an axis
            label = labels[id(row)] + (" †" if summary.few_runs else "")
            interval = (summary.ci_low, summary.ci_high)
            if not all(bound is not None and math.isfinite(bound) for bound in interval):
                interval = (None, None)
            points.append(PlotPoint(metric, label, summary.delta, *interval))
    return points


def delta_figure(rows: list[Row]) -> tuple["Figure", list[PlotPoint]]:
    """``(Figure, points)``: one panel per metric with a comparison, one error bar per point.

    Each point is drawn by its own ``errorbar`` call, so ``ax.containers[i]`` is ``points`` (of that
    metric) ``[i]``: its data line holds ``delta``, its bar the interval."""
    points = plot_points(rows)
    if not points:
        raise HemError(NOTHING_TO_PLOT)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = list(dict.fromkeys(point.metric for point in points))
    counts = [sum(point.metric == metric for point in points) for metric in metrics]
    figure = Figure(figsize=(7.0, sum(1.3 + 0.35 * count for count in counts)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(metrics), 1, squeeze=False, height_ratios=[1 + count for count in counts])[:, 0]
    for ax, metric in zip(axes, metrics):
        _draw_panel(ax, metric, [point for point in points if point.metric == metric])
    note = f"bars: {CONFIDENCE:.0%} confidence interval of the difference (pooled-variance t)"
    if any(point.label.endswith("†") for point in points):
        note += f"; † fewer than {FEW_RUNS} runs on a side"
    figure.supxlabel(note, fontsize="small", ha="right", x=0.98)
    return figure, points


def _draw_panel(ax, metric: str, points: list[PlotPoint]) -> None:
    for y, point in enumerate(points):
        xerr = None
        if point.ci_low is not None and point.ci_high is not None:
            # errorbar wants distances from the point; max(0, .) against rounding below zero
            xerr = [[max(0.0, point.delta - point.ci_low)], [max(0.0, point.ci_high - point.delta)]]
        ax.errorbar([point.delta], [y], xerr=xerr, fmt="o", color="C0", capsize=4, label=point.label)
    ax.axvline(0.0, color="0.4", linewidth=0.8, zorder=0)
    ax.set_yticks(range(len(points)), [point.label for point in points])
    ax.set_ylim(len(points) - 0.5, -0.5)  # the first row on top, as in the table
    ax.set_xlabel(f"Δ {metric} vs CE")
    ax.set_title(metric)
    ax.grid(axis="x", linewidth=0.4, alpha=0.5)


def write_plot(rows: list[Row], path: Path) -> list[PlotPoint]:
    """Draw the figure (which checks there is something to draw), then write it atomically as PNG."""
    figure, points = delta_figure(rows)
    write_atomic(path, lambda handle: figure.savefig(handle, format="png", dpi=150), what="plot")
    return points
