"""The cells of a report's text tables (github, latex, html): the columns with their headers, the
formatted numbers and marks, and the notes that explain the marks."""
from __future__ import annotations

from dataclasses import dataclass

from hemcli.report.names import display_name
from hemcli.report.table import FEW_RUNS, MISSING, SIGNIFICANCE_LEVEL, MetricSummary, Row
from hemcli.runs.condition import spell


@dataclass
class Cell:
    text: str
    bold: bool = False


NOTES = {  # mark -> the note under a table that uses it
    "arrows": "↑ higher is better, ↓ lower is better",
    "*": f"* p < {SIGNIFICANCE_LEVEL} (two-sample t-test against the matched CE condition)",
    "†": f"† fewer than {FEW_RUNS} runs on a side",
    "bold": "bold: best mean of the metric within its group",
    "match": "no CE match / N CE match: no CE condition, or several, equal the row's in every key but the loss "
             "and its parameters, so no difference is given",
}


def cell_value(value: object) -> str:
    return "" if value is MISSING else spell(value)


def _format_summary(summary: MetricSummary | None, runs: int) -> str:
    if summary is None:
        return ""
    std = "—" if summary.std is None else f"{summary.std:.2f}"
    text = f"{summary.mean:.2f} ± {std}"
    return text if summary.n == runs else f"{text} (n={summary.n})"


def _format_delta(summary: MetricSummary | None) -> str:
    if summary is None or summary.delta is None:
        return ""
    text = f"{summary.delta:+.2f}"
    if summary.ci_low is not None:
        text += f" [{summary.ci_low:+.2f}, {summary.ci_high:+.2f}]"
    return text + ("†" if summary.few_runs else "")


def _format_p(summary: MetricSummary | None) -> str:
    if summary is None or summary.p is None:
        return ""
    text = "<0.001" if summary.p < 0.001 else f"{summary.p:.3f}"
    return text + ("*" if summary.p < SIGNIFICANCE_LEVEL else "")


def _match_status(row: Row) -> str:
    return "no CE match" if row.baseline == "none" else f"{row.ce_matches} CE match"


def _compared_metrics(rows: list[Row]) -> list[str]:
    """Metrics that get ``Δ vs CE`` and ``p`` columns: those with a comparison in some row; where rows lack
    a unique CE match but nothing is compared, the first metric (to say so). None without a CE row."""
    if not rows or not any(row.is_baseline for row in rows):
        return []
    names = [name for name in rows[0].metrics
             if any(row.metrics[name] and row.metrics[name].delta is not None for row in rows)]
    unmatched = any(row.baseline in ("none", "several") for row in rows)
    return names or (list(rows[0].metrics)[:1] if unmatched else [])


@dataclass
class Column:
    """A table column: ``header`` in a one-row header (github); in a two-row one (latex, html)
    ``sub`` under ``group``, the metric's display name spanning its columns (None for a key column)."""

    header: str
    sub: str
    group: str | None = None
    numeric: bool = True


MEAN_HEADER, DELTA_HEADER, P_HEADER = "mean ± std", "Δ vs CE [95% CI]", "p"


def _columns(rows: list[Row], compared: list[str]) -> list[Column]:
    if not rows:
        return []
    columns = [Column(name, name, numeric=False) for name in rows[0].columns] + [Column("n", "n")]
    for name in rows[0].metrics:
        shown = display_name(name)
        columns.append(Column(shown, MEAN_HEADER, shown))
        if name in compared:
            columns += [Column(DELTA_HEADER, DELTA_HEADER, shown), Column(P_HEADER, P_HEADER, shown)]
    return columns


def _text_cells(row: Row, compared: list[str]) -> list[Cell]:
    cells = [Cell(cell_value(value)) for value in row.columns.values()] + [Cell(str(row.runs))]
    for name, summary in row.metrics.items():
        cells.append(Cell(_format_summary(summary, row.runs), bold=bool(summary and summary.best)))
        if name not in compared:
            continue
        unmatched = row.baseline in ("none", "several")
        status = _match_status(row) if unmatched and name == compared[0] else ""
        cells += [Cell(status or _format_delta(summary)), Cell(_format_p(summary))]
    return cells


def _marks_used(rows: list[Row], compared: list[str]) -> list[str]:
    """The marks the table shows, in the order of NOTES; from the numbers, not the cell texts (a
    dataset may be named ``x*``)."""
    shown = [row.metrics[name] for row in rows if row.baseline == "matched" for name in compared]
    shown = [summary for summary in shown if summary is not None and summary.delta is not None]
    used = {
        "arrows": bool(rows and rows[0].metrics),
        "*": any(summary.p is not None and summary.p < SIGNIFICANCE_LEVEL for summary in shown),
        "†": any(summary.few_runs for summary in shown),
        "bold": any(summary and summary.best for row in rows for summary in row.metrics.values()),
        "match": bool(compared) and any(row.baseline in ("none", "several") for row in rows),
    }
    return [mark for mark in NOTES if used[mark]]


@dataclass
class TableParts:
    """What every text table is made of: the columns, the cells row by row, the notes on the marks used."""

    columns: list[Column]
    body: list[list[Cell]]
    notes: list[str]

    @property
    def headers(self) -> list[str]:
        return [column.header for column in self.columns]

    @property
    def align(self) -> list[str]:
        return ["right" if column.numeric else "left" for column in self.columns]


def table_parts(rows: list[Row]) -> TableParts:
    compared = _compared_metrics(rows)
    return TableParts(_columns(rows, compared), [_text_cells(row, compared) for row in rows],
                      [NOTES[mark] for mark in _marks_used(rows, compared)])


def spans(columns: list[Column]) -> list[tuple[str | None, int, int]]:
    """``(group, first, count)`` for each run of adjacent columns under one group (None: key columns)."""
    found: list[tuple[str | None, int, int]] = []
    for index, column in enumerate(columns):
        if found and column.group is not None and found[-1][0] == column.group:
            group, first, count = found[-1]
            found[-1] = (group, first, count + 1)
        else:
            found.append((column.group, index, 1))
    return found
