"""`hem report --format html`: a standalone page (UTF-8, a title, inline CSS) with the table, the notes
under it and, with ``--plot``, the figures embedded as SVG ``data:`` URIs, so the one file is the whole
report: it can be mailed, attached or opened offline.

The table has a two-row header (each metric's display name over its mean ± std, Δ and p columns)
that stays in view while scrolling; numbers are right-aligned in tabular figures, the best mean bold.
"""
from __future__ import annotations

import base64
import html
from typing import Sequence

from hemcli.report.cells import spans, table_parts
from hemcli.report.setting import setting
from hemcli.report.table import Row

STYLE = """
body { font: 13px/1.4 system-ui, "Segoe UI", Roboto, sans-serif; margin: 1.5em; color: #1b1b1b; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
p.setting { color: #555; margin: 0 0 1em; }
table { border-collapse: collapse; }
thead { position: sticky; top: 0; }
th { background: #f3f4f6; font-weight: 600; padding: .3em .45em; border-bottom: 1px solid #bbb;
     vertical-align: bottom; }
th.group { border-bottom: 1px solid #ddd; text-align: center; }
th.key, td.key { text-align: left; }
td { padding: .25em .45em; border-bottom: 1px solid #eee; white-space: nowrap; }
span.ci { color: #555; font-size: .9em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.first, th.first { border-left: 1px solid #ddd; }
tbody tr:hover { background: #f9fafb; }
ul.notes { color: #444; font-size: .92em; padding-left: 1.2em; }
div.figures { display: flex; flex-wrap: wrap; gap: 1.5em; margin-top: 1.5em; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .92em; }
"""


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _header(parts) -> list[str]:
    """Two header rows: key columns spanning both, each metric's name over its sub-columns."""
    top, below = [], []
    two_rows = any(column.group is not None for column in parts.columns)
    for group, first, count in spans(parts.columns):
        if group is None:
            column = parts.columns[first]
            side = "num" if column.numeric else "key"
            span = ' rowspan="2"' if two_rows else ""
            top.append(f'<th{span} class="{side}" scope="col">{_escape(column.header)}</th>')
            continue
        name = _escape(group).replace(" ↑", "&nbsp;↑").replace(" ↓", "&nbsp;↓")  # the arrow stays with its name
        top.append(f'<th colspan="{count}" class="group first" scope="colgroup">{name}</th>')
        for index in range(first, first + count):
            edge = " first" if index == first else ""
            below.append(f'<th class="num{edge}" scope="col">{_cell_html(parts.columns[index].sub)}</th>')
    return ["<thead>", f"<tr>{''.join(top)}</tr>", *([f"<tr>{''.join(below)}</tr>"] if two_rows else []), "</thead>"]


def _body(parts) -> list[str]:
    firsts = {first for group, first, _ in spans(parts.columns) if group is not None}
    lines = ["<tbody>"]
    for line in parts.body:
        cells = []
        for index, (cell, column) in enumerate(zip(line, parts.columns)):
            classes = ("num" if column.numeric else "key") + (" first" if index in firsts else "")
            text = _cell_html(cell.text)
            text = f"<b>{text}</b>" if cell.bold else text
            cells.append(f'<td class="{classes}">{text}</td>')
        lines.append(f"<tr>{''.join(cells)}</tr>")
    return lines + ["</tbody>"]


def _cell_html(text: str) -> str:
    """The cell's text, escaped; a difference's interval (and the header's "[95% CI]") on a line of its
    own, so the columns stay narrow."""
    difference, bracket, interval = text.partition(" [")
    if not bracket:
        return _escape(text)
    return f'{_escape(difference)}<br><span class="ci">[{_escape(interval)}</span>'


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def render_page(rows: list[Row], images: Sequence[tuple[str, str]] = ()) -> str:
    """The report as one HTML page.

    Args:
        rows: the report's rows.
        images: ``(caption, SVG text)`` of each figure, shown under the notes.

    Returns:
        str: the page, from ``<!DOCTYPE html>`` to ``</html>``.
    """
    parts = table_parts(rows)
    about = setting(rows)
    title = f"hem report: {about}" if about else "hem report"
    lines = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             "<h1>hem report</h1>", f'<p class="setting">{_escape(about)}</p>', "<table>"]
    lines += _header(parts) + _body(parts) + ["</table>"]
    if parts.notes:
        lines += ['<ul class="notes">', *(f"<li>{_escape(note)}</li>" for note in parts.notes), "</ul>"]
    if images:
        lines.append('<div class="figures">')
        for caption, svg in images:
            lines += [f'<figure><img src="{svg_data_uri(svg)}" alt="{_escape(caption)}">',
                      f"<figcaption>{_escape(caption)}</figcaption></figure>"]
        lines.append("</div>")
    return "\n".join(lines + ["</body>", "</html>"])
