"""A report's rows as github, latex (booktabs) or html tables with notes, as CSV, or as JSON."""
from __future__ import annotations

import csv
import html
import io
import json
import math
from dataclasses import dataclass
from typing import Callable

from hemcli.errors import unknown_name
from hemcli.report.table import FEW_RUNS, MISSING, SIGNIFICANCE_LEVEL, MetricSummary, Row

FORMATS = ("github", "latex", "csv", "json", "html")
from hemcli.runs.condition import spell


# ---------------------------------------------------------------- table cells (github, latex, html)


@dataclass
class Cell:
    text: str
    bold: bool = False


NOTES = {  # mark -> the note under a table that uses it
    "*": f"* p < {SIGNIFICANCE_LEVEL} (two-sample t-test against the matched CE condition)",
    "†": f"† fewer than {FEW_RUNS} runs on a side",
    "bold": "bold: best mean of the metric within its group",
    "match": "no CE match / N CE match: no CE condition, or several, equal the row's in every key but the loss "
             "and its parameters, so no difference is given",
}


def _cell_value(value: object) -> str:
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
    """Metrics that get ``vs ce`` and ``p`` columns: those with a comparison in some row; where rows lack
    a unique CE match but nothing is compared, the first metric (to say so). None without a CE row."""
    if not rows or not any(row.is_baseline for row in rows):
        return []
    names = [name for name in rows[0].metrics
             if any(row.metrics[name] and row.metrics[name].delta is not None for row in rows)]
    unmatched = any(row.baseline in ("none", "several") for row in rows)
    return names or (list(rows[0].metrics)[:1] if unmatched else [])


def _text_headers(rows: list[Row], compared: list[str]) -> list[str]:
    if not rows:
        return []
    headers = [*rows[0].columns, "n"]
    for name in rows[0].metrics:
        headers += [name, f"{name} vs ce", f"{name} p"] if name in compared else [name]
    return headers


def _text_cells(row: Row, compared: list[str]) -> list[Cell]:
    cells = [Cell(_cell_value(value)) for value in row.columns.values()] + [Cell(str(row.runs))]
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
        "*": any(summary.p is not None and summary.p < SIGNIFICANCE_LEVEL for summary in shown),
        "†": any(summary.few_runs for summary in shown),
        "bold": any(summary and summary.best for row in rows for summary in row.metrics.values()),
        "match": bool(compared) and any(row.baseline in ("none", "several") for row in rows),
    }
    return [mark for mark in NOTES if used[mark]]


def _table_parts(rows: list[Row]) -> tuple[list[str], list[list[Cell]], list[str], list[str]]:
    """Headers, cells, column alignment (columns left, numbers right) and the notes for the marks used."""
    compared = _compared_metrics(rows)
    headers = _text_headers(rows, compared)
    key_count = len(rows[0].columns) if rows else 0
    align = ["left"] * key_count + ["right"] * (len(headers) - key_count)
    body = [_text_cells(row, compared) for row in rows]
    return headers, body, align, [NOTES[mark] for mark in _marks_used(rows, compared)]


def _render_github(rows: list[Row]) -> str:
    from tabulate import tabulate

    headers, body, align, notes = _table_parts(rows)
    cells = [[f"**{cell.text}**" if cell.bold else cell.text for cell in line] for line in body]
    table = tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True, colalign=align)
    # A blank line ends the table; "- \*" keeps a note a list item instead of a nested bullet in markdown.
    note_lines = [f"- {note.replace('*', chr(92) + '*', 1)}" for note in notes]
    return "\n".join([table, "", *note_lines]) if notes else table


LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "<": r"\ensuremath{<}", ">": r"\ensuremath{>}",
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(char, char) for char in text)


def _render_latex(rows: list[Row]) -> str:
    """A booktabs tabular. Built here rather than by tabulate, whose latex formats either escape
    ``\\textbf`` or lack booktabs rules."""
    headers, body, align, notes = _table_parts(rows)
    lines = [[latex_escape(header) for header in headers]]
    lines += [[rf"\textbf{{{latex_escape(cell.text)}}}" if cell.bold else latex_escape(cell.text) for cell in line]
              for line in body]
    widths = [max(len(line[index]) for line in lines) for index in range(len(headers))]

    def latex_line(cells: list[str]) -> str:
        padded = [cell.ljust(width) if side == "left" else cell.rjust(width)
                  for cell, width, side in zip(cells, widths, align)]
        return " & ".join(padded) + r" \\"

    spec = "".join("l" if side == "left" else "r" for side in align)
    table = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", latex_line(lines[0]), r"\midrule",
             *map(latex_line, lines[1:]), r"\bottomrule", r"\end{tabular}"]
    notes = [latex_escape(note) for note in notes]
    return "\n".join(table + ([""] + [" \\\\\n".join(notes)] if notes else []))


def _render_html(rows: list[Row]) -> str:
    from tabulate import tabulate

    headers, body, align, notes = _table_parts(rows)
    cells = [[f"<b>{html.escape(cell.text)}</b>" if cell.bold else html.escape(cell.text) for cell in line]
             for line in body]
    table = tabulate(cells, headers=[html.escape(header) for header in headers], tablefmt="unsafehtml",
                     disable_numparse=True, colalign=align)
    return "\n".join([table, *(f"<p>{html.escape(note)}</p>" for note in notes)])


# ---------------------------------------------------------------- csv and json


def _finite_or_none(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else value


SUMMARY_FIELDS = ("mean", "std", "n", "delta", "p", "ci_low", "ci_high", "few_runs", "best")


def _summary_dict(summary: MetricSummary | None) -> dict:
    if summary is None:
        return {}
    return {name: _finite_or_none(getattr(summary, name)) for name in SUMMARY_FIELDS}


def _csv_value(value: object) -> object:
    if value is None or value is MISSING:
        return ""
    return ("true" if value else "false") if isinstance(value, bool) else value


def _render_csv(rows: list[Row]) -> str:
    metric_names = list(rows[0].metrics) if rows else []
    header = [*(rows[0].columns if rows else []), "n", "baseline"]
    header += [f"{name}_{stat}" for name in metric_names for stat in SUMMARY_FIELDS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        columns = [_cell_value(value) for value in row.columns.values()]
        stats = [_summary_dict(summary) for summary in row.metrics.values()]
        values = [stat.get(name) for stat in stats for name in SUMMARY_FIELDS]
        writer.writerow([_csv_value(value) for value in [*columns, row.runs, row.baseline, *values]])
    return buffer.getvalue()


def _json_record(row: Row) -> dict:
    columns = {name: None if value is MISSING else value for name, value in row.columns.items()}
    return {
        **columns, "n": row.runs, "baseline": row.baseline,
        "ce_matches": None if row.is_baseline else row.ce_matches, "condition": row.condition,
        "metrics": {name: _summary_dict(summary) or None for name, summary in row.metrics.items()},
    }


def _render_json(rows: list[Row]) -> str:
    return json.dumps([_json_record(row) for row in rows], indent=2, default=str)


_RENDERERS: dict[str, Callable[[list[Row]], str]] = {
    "github": _render_github,
    "latex": _render_latex,
    "csv": _render_csv,
    "json": _render_json,
    "html": _render_html,
}


def check_format(fmt: str) -> None:
    if fmt not in _RENDERERS:
        raise unknown_name("format", fmt, FORMATS)


def render(rows: list[Row], fmt: str = "github") -> str:
    """The rows as a github/latex/html table, CSV, or JSON (see the module docstring for the layout)."""
    check_format(fmt)
    return _RENDERERS[fmt](rows)


