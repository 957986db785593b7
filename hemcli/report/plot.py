"""`hem report --plot FILE`: each loss's difference to its matched CE condition, per metric, with the 95%
confidence interval, as in the paper's Figs. 1-2; PNG, PDF or SVG by the file's extension.

One figure per metric group (clean, ood, calibration, ... as ``hemcli.report.names`` groups them) with
at most ``PANELS_PER_FIGURE`` panels, two columns from three panels on: the first figure is written to
FILE, each further one beside it as ``FILE-<group>.<ext>`` (``-<group>-2`` for a group's second
figure). The plot shows the metrics the table shows (``--metrics``; the headline ones by default).

A panel is one metric, titled by its display name ("ECE (%) ↓"); in it one horizontal error bar per
compared row (``delta`` with ``ci_low``..``ci_high`` from ``hemcli.report``; a point without a bar
where the interval is undefined), labelled by the loss and the keys that tell the rows apart
(``hem M=500``), with a line at 0. The x axis says the unit of the difference and which side is
better; a point is blue where it is better than CE, red where worse, filled with ``p = ... *`` at the
right where p < 0.05, open otherwise. Rows from fewer than 3 runs on a side carry ``†``. The title
names the metric group and the setting (``hemcli.report.setting``). The numbers drawn are the
report's own (``PlotPoint``), so the plot and the table cannot disagree.

matplotlib is imported only here and only when plotting, through ``Figure`` and the Agg canvas: no
pyplot, no global state, no display needed.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from hemcli.errors import HemError
from hemcli.fileio import write_atomic
from hemcli.report.names import GROUPS, group_of, lower_is_better, metric_name
from hemcli.report.setting import setting
from hemcli.report.table import CONFIDENCE, FEW_RUNS, FIXED_COLUMNS, MISSING, SIGNIFICANCE_LEVEL, Row
from hemcli.runs.condition import spell

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NOTHING_TO_PLOT = "nothing to plot: no loss has a matched CE condition"
PLOT_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
PANELS_PER_FIGURE = 8
PNG_DPI = 150
BETTER_COLOR, WORSE_COLOR = "#1f77b4", "#d62728"


class PlotPoint(NamedTuple):
    """One error bar: ``delta`` of ``metric`` for the row named ``label``; the interval and p may be None."""

    metric: str
    label: str
    delta: float
    ci_low: float | None
    ci_high: float | None
    p: float | None = None

    @property
    def significant(self) -> bool:
        return self.p is not None and self.p < SIGNIFICANCE_LEVEL

    @property
    def better(self) -> bool:
        """Whether the loss did better than CE on this metric (by the mean)."""
        return self.delta < 0 if lower_is_better(self.metric) else self.delta > 0


class PlotPage(NamedTuple):
    """One figure: the metric ``group``, the file it goes to, and its points."""

    group: str
    path: Path
    points: list[PlotPoint]


def plot_format(path: Path) -> str:
    """``png``, ``pdf`` or ``svg`` from the file's extension; another is a HemError."""
    found = PLOT_FORMATS.get(path.suffix.lower())
    if found is None:
        shown = f"extension {path.suffix!r}" if path.suffix else "no extension"
        raise HemError(f"cannot write plot {path}: {shown}; valid choices: {', '.join(PLOT_FORMATS)}")
    return found


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise HemError("--plot needs matplotlib: pip install matplotlib") from None


def check_plot_target(path: Path) -> None:
    """Everything that can be checked before the report is built: the format, matplotlib, a folder to write in."""
    if path.is_dir():
        raise HemError(f"cannot write plot {path}: it is a folder")
    plot_format(path)
    _require_matplotlib()
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
            points.append(PlotPoint(metric, label, summary.delta, *interval, summary.p))
    return points


def plot_pages(points: list[PlotPoint], path: Path) -> list[PlotPage]:
    """The points split into figures: by metric group (in order of first appearance), at most
    ``PANELS_PER_FIGURE`` metrics each; the first to ``path``, the others to ``<stem>-<group>[-k]<ext>``."""
    metrics = list(dict.fromkeys(point.metric for point in points))
    groups = list(dict.fromkeys(group_of(metric) for metric in metrics))
    pages = []
    for group in groups:
        members = [metric for metric in metrics if group_of(metric) == group]
        for chunk in range(0, len(members), PANELS_PER_FIGURE):
            shown = set(members[chunk:chunk + PANELS_PER_FIGURE])
            number = chunk // PANELS_PER_FIGURE + 1
            name = f"{path.stem}-{group}" + (f"-{number}" if number > 1 else "") + path.suffix
            target = path if not pages else path.with_name(name)
            pages.append(PlotPage(group, target, [point for point in points if point.metric in shown]))
    return pages


def delta_figure(points: list[PlotPoint], title: str = "") -> "Figure":
    """One panel per metric of ``points``, one error bar per point, ``title`` above them.

    Each point is drawn by its own ``errorbar`` call, so ``ax.containers[i]`` is ``points`` (of that
    metric) ``[i]``: its data line holds ``delta``, its bar the interval; ``ax.texts[i]`` its p."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = list(dict.fromkeys(point.metric for point in points))
    columns = 1 if len(metrics) <= 2 else 2
    lines = math.ceil(len(metrics) / columns)
    most = [max(sum(point.metric == metric for point in points) for metric in metrics[line * columns:][:columns])
            for line in range(lines)]
    height = 1.3 + sum(0.95 + 0.3 * count for count in most)  # inches: titles and notes, then each line of panels
    figure = Figure(figsize=(6.5 if columns == 1 else 9.0, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(lines, columns, squeeze=False, height_ratios=[1 + count for count in most]).ravel()
    for ax, metric in zip(axes, metrics):
        _draw_panel(ax, metric, [point for point in points if point.metric == metric])
    for ax in axes[len(metrics):]:
        ax.set_axis_off()
    figure.suptitle(title, fontsize="medium")
    few = f"; † fewer than {FEW_RUNS} runs on a side" if any(point.label.endswith("†") for point in points) else ""
    note = (f"bars: {CONFIDENCE:.0%} confidence interval of Δ (pooled-variance t){few}"
            f"\nblue: better than CE, red: worse; filled, *: p < {SIGNIFICANCE_LEVEL} (two-sample t-test), "
            "open: not significant")
    figure.supxlabel(note, fontsize="x-small", color="0.3")
    return figure


def _p_text(point: PlotPoint) -> str:
    if point.p is None:
        return ""
    shown = "p < 0.001" if point.p < 0.001 else f"p = {point.p:.3f}"
    return shown + (" *" if point.significant else "")


def _draw_panel(ax, metric: str, points: list[PlotPoint]) -> None:
    name = metric_name(metric)
    for y, point in enumerate(points):
        xerr = None
        if point.ci_low is not None and point.ci_high is not None:
            # errorbar wants distances from the point; max(0, .) against rounding below zero
            xerr = [[max(0.0, point.delta - point.ci_low)], [max(0.0, point.ci_high - point.delta)]]
        color = BETTER_COLOR if point.better else WORSE_COLOR
        ax.errorbar([point.delta], [y], xerr=xerr, fmt="o", color=color, capsize=4, markersize=7,
                    markerfacecolor=color if point.significant else "white", markeredgewidth=1.5, label=point.label)
        ax.annotate(_p_text(point), xy=(1, y), xycoords=("axes fraction", "data"), xytext=(6, 0),
                    textcoords="offset points", va="center", ha="left", fontsize="small")
    ax.axvline(0.0, color="0.4", linewidth=0.8, zorder=0)
    ax.set_yticks(range(len(points)), [point.label for point in points])
    ax.set_ylim(len(points) - 0.5, -0.5)  # the first row on top, as in the table
    unit = f" ({name.delta_unit})" if name.delta_unit else ""
    better = "← better" if lower_is_better(metric) else "better →"
    ax.set_xlabel(f"Δ vs CE{unit}   {better}", fontsize="small")
    ax.set_title(name.display, fontsize="medium")
    ax.grid(axis="x", linewidth=0.4, alpha=0.5)


def page_title(group: str, rows: list[Row]) -> str:
    return f"{GROUPS[group]}: difference to CE\n{setting(rows)}"


def draw_pages(rows: list[Row], path: Path) -> list[tuple[PlotPage, "Figure"]]:
    """Every figure of the plot, drawn but not written; a HemError when nothing is compared."""
    points = plot_points(rows)
    if not points:
        raise HemError(NOTHING_TO_PLOT)
    return [(page, delta_figure(page.points, page_title(page.group, rows))) for page in plot_pages(points, path)]


def figure_bytes(figure: "Figure", fmt: str) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=_metadata(fmt))
    return buffer.getvalue()


def _metadata(fmt: str) -> dict | None:
    """No creation date in a PDF or SVG, so the same report makes the same bytes."""
    return {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)


def write_pages(drawn: list[tuple[PlotPage, "Figure"]], path: Path) -> None:
    """Write each drawn figure atomically to its file, in the format of ``path``'s extension."""
    fmt = plot_format(path)
    for page, figure in drawn:
        data = figure_bytes(figure, fmt)
        write_atomic(page.path, lambda handle, data=data: handle.write(data), what="plot")


def write_plot(rows: list[Row], path: Path) -> list[tuple[PlotPage, "Figure"]]:
    """Draw every figure (which checks there is something to draw), then write each atomically in the
    format of ``path``'s extension; returns what was written."""
    drawn = draw_pages(rows, path)
    write_pages(drawn, path)
    return drawn
