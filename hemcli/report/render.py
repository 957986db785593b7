"""A report's rows as github or latex (booktabs) tables with notes, a standalone HTML page
(``hemcli.report.page``), CSV, or JSON."""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Callable, Sequence

from hemcli.errors import unknown_name
from hemcli.report.cells import Cell, Column, cell_value, spans, table_parts
from hemcli.report.page import render_page
from hemcli.report.table import MISSING, MetricSummary, Row

FORMATS = ("github", "latex", "csv", "json", "html")
MACHINE_FORMATS = ("csv", "json")  # for programs: raw metric keys, every metric unless --metrics says


# ---------------------------------------------------------------- github and latex


def _render_github(rows: list[Row]) -> str:
    from tabulate import tabulate

    parts = table_parts(rows)
    cells = [[f"**{cell.text}**" if cell.bold else cell.text for cell in line] for line in parts.body]
    table = tabulate(cells, headers=parts.headers, tablefmt="github", disable_numparse=True, colalign=parts.align)
    # A blank line ends the table; "- \*" keeps a note a list item instead of a nested bullet in markdown.
    note_lines = [f"- {note.replace('*', chr(92) + '*', 1)}" for note in parts.notes]
    return "\n".join([table, "", *note_lines]) if parts.notes else table


LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "<": r"\ensuremath{<}", ">": r"\ensuremath{>}",
    # characters pdflatex has no text glyph for (± † — it has)
    "Δ": r"\ensuremath{\Delta}", "↑": r"\ensuremath{\uparrow}", "↓": r"\ensuremath{\downarrow}",
    "ℓ": r"\ensuremath{\ell}", "∞": r"\ensuremath{\infty}",
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(char, char) for char in text)


def _render_latex(rows: list[Row]) -> str:
    """A booktabs tabular with a two-row header: each metric's display name over its columns
    (``\\multicolumn`` and ``\\cmidrule``), then mean ± std, Δ and p. Built here rather than by tabulate,
    whose latex formats either escape ``\\textbf`` or lack booktabs rules."""
    parts = table_parts(rows)
    columns, align = parts.columns, parts.align

    def number_cell(cell: Cell, column: Column) -> str:
        text = latex_escape(cell.text)
        if column.numeric:  # a minus sign, not a hyphen (only in numbers: a dataset may be named cifar-10)
            text = text.replace("-", r"\ensuremath{-}")
        return rf"\textbf{{{text}}}" if cell.bold else text

    lines = [[latex_escape(column.sub) for column in columns]]
    lines += [[number_cell(cell, column) for cell, column in zip(line, columns)] for line in parts.body]
    widths = [max(len(line[index]) for line in lines) for index in range(len(columns))]

    def latex_line(cells: list[str]) -> str:
        padded = [cell.ljust(width) if side == "left" else cell.rjust(width)
                  for cell, width, side in zip(cells, widths, align)]
        return " & ".join(padded) + r" \\"

    groups, rules = [], []
    for group, first, count in spans(columns):
        if group is None:
            groups += [""] * count
        else:
            groups.append(rf"\multicolumn{{{count}}}{{c}}{{{latex_escape(group)}}}")
            rules.append(rf"\cmidrule(lr){{{first + 1}-{first + count}}}")
    spec = "".join("l" if side == "left" else "r" for side in align)
    top = [" & ".join(groups) + r" \\", " ".join(rules)] if rules else []
    table = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", *top, latex_line(lines[0]), r"\midrule",
             *map(latex_line, lines[1:]), r"\bottomrule", r"\end{tabular}"]
    # {*}: after \\ a bare * would be read as \\*, and the mark lost
    notes = [latex_escape(note).replace("*", "{*}", 1) if note.startswith("*") else latex_escape(note)
             for note in parts.notes]
    return "\n".join(table + (["", r"\noindent " + " \\\\\n".join(notes)] if notes else []))


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
        columns = [cell_value(value) for value in row.columns.values()]
        stats = [_summary_dict(summary) for summary in row.metrics.values()]
        values = [stat.get(name) for stat in stats for name in SUMMARY_FIELDS]
        writer.writerow([_csv_value(value) for value in [*columns, row.runs, row.baseline, *values]])
    return buffer.getvalue().removesuffix("\n")  # the printing ends the last row: `| tail -1` is that row


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
    "html": lambda rows: render_page(rows),
}


def check_format(fmt: str) -> None:
    if fmt not in _RENDERERS:
        raise unknown_name("format", fmt, FORMATS)


def render(rows: list[Row], fmt: str = "github", images: Sequence[tuple[str, str]] = ()) -> str:
    """The rows as a github/latex table, an HTML page, CSV, or JSON (see ``hemcli.report``'s docstring).

    Args:
        rows: the report's rows (``build_rows``).
        fmt: one of ``FORMATS``.
        images: for html, ``(caption, SVG text)`` of each figure to show under the table.

    Returns:
        str: the text, without a final newline (the printing adds one).
    """
    check_format(fmt)
    if fmt == "html":
        return render_page(rows, images)
    return _RENDERERS[fmt](rows)


