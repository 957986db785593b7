"""`hem report`: one table over many result files, grouped by condition, with the difference to CE.

Every ``hem <task>`` run writes one result JSON. This module finds them below the given paths and
groups runs by *condition*: the recipe without the seed and the keys that only say where or how to run
(``hemcli.runs.condition.condition_of``). The condition is always computed from ``result["recipe"]``,
so results written before results recorded their condition are read the same way. Each metric is
summarized per condition:

* ``mean`` and the sample standard deviation ``std`` (ddof=1) over the runs that report the metric,
  and ``n``, how many runs that is. A single run has no spread estimate: ``std`` is ``None``
  (``null`` in JSON, empty in CSV, ``—`` in the tables).

Columns. Always ``task``, ``dataset``, ``arch`` and ``loss``; besides them every condition key whose
value differs between the conditions shown (a key some conditions lack counts as differing; an empty
mapping such as an old result's ``loss.params: {}`` counts as absent; a loss parameter only when it
differs between conditions of the same loss, so CE's tau and HEM's M at their defaults are no columns
of a CE-vs-HEM table), named by its shortest unique
suffix (``loss.params.M`` -> ``M``, ``optim.lr`` -> ``lr``). Order: task, dataset, arch, the other
varying keys, loss, the loss's parameters. Rows are sorted by the columns in that order (numbers
numerically, missing values last, CE first among the losses).

CE comparison. A row of another loss is compared with the CE condition that equals it in every key but
``loss.name`` and ``loss.params.*``. Where no CE condition or several match, the row says so
(``no CE match`` / ``2 CE match`` in the tables, ``"baseline": "none"``/``"several"`` in JSON and CSV)
and no difference is given. Against the matched CE row, per metric:

* ``delta`` = mean − CE mean, where both sides have a value;
* ``p``, the two-sample t-test (equal variances, ``scipy.stats.ttest_ind``), and the 95% confidence
  interval ``ci_low``..``ci_high`` of the difference, delta ± t(0.975, n1+n2−2) · s_pooled ·
  sqrt(1/n1 + 1/n2), where both sides have at least two values (``None`` without scipy);
* ``few_runs``: fewer than 3 values on a side, marked ``†`` in the tables (``None`` where nothing
  is compared).

Marks in the tables: ``*`` after a p below 0.05; ``†`` after a difference from fewer than 3 runs on a
side; bold for the best mean of a metric within its group (the conditions that differ only in the loss
and its parameters; the lowest mean for metrics where lower is better, see ``lower_is_better``). Notes
under the table explain the marks used.

Metrics. Without ``metrics``, the github, latex and html tables and the plot show the headline metrics
of each evaluation (``names.headline_metrics``: clean accuracy, the shot groups, mean corruption
accuracy, AUROC and FPR95 over all unknown sets and DAR averaged over the norms for the msp score,
ECE, final accuracy and forgetting, mIoU, and every metric hem does not know); csv and json, for
programs, every metric. ``metrics`` takes metric keys, group names (``names.GROUPS``: clean, shots,
corrupt, ood, dar, robust, calibration, continual, segment, other; ``attack`` for dar and robust),
``headline`` and ``all``, mixed (``names.select_metrics``).

Formats. github, latex (booktabs) and html tables: the columns, ``n`` (runs in the condition), then per
metric, headed by its display name with unit and better direction (``names.metric_name``: "ECE (%)
↓"), a ``mean ± std`` cell (``(n=k)`` appended when some runs lack the metric) and, for metrics with a
CE comparison, ``Δ vs CE [95% CI]`` (``+1.23 [+0.41, +2.05]``: the difference and its interval) and
``p``; latex and html put the display name over its three columns. html is a standalone page
(``hemcli.report.page``). CSV (raw keys): the columns, ``n``, ``baseline`` and full-precision
``<metric>_mean/_std/_n/_delta/_p/_ci_low/_ci_high/_few_runs/_best``. JSON: a list of
``{<columns>, "n", "baseline", "ce_matches", "condition", "metrics": {<metric>: {mean, std, n, delta,
p, ci_low, ci_high, few_runs, best} or null}}``. No format ends in a newline: the printing adds one.
``--plot FILE.png|.pdf|.svg`` also draws each loss's difference to CE with its interval, one figure
per metric group (``hemcli.report.plot``).

No torch here, and scipy and matplotlib only when a p-value or a plot is needed: the report must be fast
and work without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

from hemcli.errors import HemError
from hemcli.report.names import (GROUPS, HEADLINE_WORD, display_name, headline_metrics, lower_is_better,
                                 metric_name, select_metrics)
from hemcli.report.reading import find_results, load_results, print_to_stderr
from hemcli.report.render import FORMATS, MACHINE_FORMATS, check_format, render
from hemcli.report.table import BASELINE_LOSS, MISSING, MetricSummary, Row, build_rows, keep_metrics, summarize

__all__ = ["FORMATS", "BASELINE_LOSS", "GROUPS", "MISSING", "MetricSummary", "Row", "build_rows", "display_name",
           "find_results", "headline_metrics", "load_results", "lower_is_better", "metric_name", "render", "report",
           "select_metrics", "summarize"]


def _as_list(paths: str | Path | Iterable[str | Path]) -> list[str | Path]:
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


def report(
    paths: str | Path | Iterable[str | Path],
    fmt: str = "github",
    metrics: str | Sequence[str] | None = None,
    warn: Callable[[str], None] = print_to_stderr,
    plot: str | Path | None = None,
) -> str:
    """The report over every result file below ``paths``; skipped files are reported through ``warn``.

    Args:
        paths: result files and folders (searched recursively).
        fmt: one of ``FORMATS``.
        metrics: the metric columns (``select_metrics``: keys, group names, ``headline``, ``all``);
            None: the headline metrics in github, latex and html and in the plot, every metric in csv
            and json.
        warn: called with one line per file skipped and per plot file beyond ``plot`` written.
        plot: also draw each loss's difference to CE there, as PNG, PDF or SVG by the extension
            (``hemcli.report.plot``); every check of the plot comes before anything is written, and a
            failed one writes nothing. With ``fmt="html"`` the figures are embedded in the page too.

    Returns:
        str: the table (or CSV, JSON, the HTML page), without a final newline.
    """
    check_format(fmt)
    if plot is not None:
        from hemcli.report.plot import check_plot_target

        plot = Path(plot)
        check_plot_target(plot)
    paths = _as_list(paths)
    where = ", ".join(str(path) for path in paths)
    files = find_results(paths, warn)
    if not files:
        raise HemError(f"no result files under {where}")
    results = load_results(files, warn)
    if not results:
        raise HemError(f"no complete result files under {where} ({len(files)} skipped)")
    rows = build_rows(results)
    present = list(rows[0].metrics) if rows else []
    default = "all" if fmt in MACHINE_FORMATS else HEADLINE_WORD
    table_rows = keep_metrics(rows, select_metrics(present, metrics if metrics is not None else default))
    if plot is None:
        return render(table_rows, fmt)
    from hemcli.report.plot import draw_pages, figure_bytes, write_pages

    plot_rows = keep_metrics(rows, select_metrics(present, metrics if metrics is not None else HEADLINE_WORD))
    drawn = draw_pages(plot_rows, plot)  # raises when nothing is compared, before any file is written
    images = [(f"{page.path.name}: {GROUPS[page.group].lower()}, difference to CE",
               figure_bytes(figure, "svg").decode()) for page, figure in drawn] if fmt == "html" else []
    text = render(table_rows, fmt, images)
    write_pages(drawn, plot)
    if len(drawn) > 1:
        warn(f"plot: {len(drawn)} figures, one per metric group: " + ", ".join(str(page.path) for page, _ in drawn))
    return text
