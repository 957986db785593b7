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

Formats. github, latex (booktabs) and html tables: the columns, ``n`` (runs in the condition), then per
metric a ``mean ± std`` cell (``(n=k)`` appended when some runs lack the metric) and, for metrics with
a CE comparison, ``<metric> vs ce`` (``+1.23 [+0.41, +2.05]``: the difference and its interval) and
``<metric> p``. CSV: the columns, ``n``, ``baseline`` and full-precision
``<metric>_mean/_std/_n/_delta/_p/_ci_low/_ci_high/_few_runs/_best``. JSON: a list of
``{<columns>, "n", "baseline", "ce_matches", "condition", "metrics": {<metric>: {mean, std, n, delta,
p, ci_low, ci_high, few_runs, best} or null}}``. ``--plot FILE.png`` also draws each loss's difference
to CE with its interval (``hemcli.report_plot``).

No torch here, and scipy and matplotlib only when a p-value or a plot is needed: the report must be fast
and work without them.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import statistics
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from hemcli.errors import HemError, shown, unknown_name
from hemcli.runs.condition import canonical, condition_of, short_names, spell

FORMATS = ("github", "latex", "csv", "json", "html")
SUPPORTED_SCHEMA_VERSIONS = (1,)
REQUIRED_KEYS = ("schema_version", "task", "recipe", "metrics")
BASELINE_LOSS = "ce"
SIGNIFICANCE_LEVEL = 0.05
CONFIDENCE = 0.95
FEW_RUNS = 3  # a comparison with fewer runs than this on a side is flagged

# The columns every table has: (column name, condition key), in display order; "loss" comes after the
# other varying keys and before the loss's parameters.
FIXED_COLUMNS = {"task": "task", "dataset": "dataset.name", "arch": "model.arch", "loss": "loss.name"}
LOSS_KEY = "loss.name"
LOSS_PARAMS = "loss.params"
# Names a varying key's column may not take, because a fixed column or a JSON/CSV field has them.
RESERVED_NAMES = {*FIXED_COLUMNS, "n", "baseline", "ce_matches", "condition", "metrics"}


def print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


class _Missing:
    """A column value for a condition that lacks the key (``None`` is a value: ``margin: null``)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


@dataclass
class MetricSummary:
    """One metric over the runs of one condition, and its comparison with the matched CE condition."""

    mean: float
    std: float | None  # None for a single run
    n: int
    delta: float | None = None  # mean minus the CE row's mean
    p: float | None = None  # two-sample t-test against the CE row
    ci_low: float | None = None  # 95% confidence interval of delta
    ci_high: float | None = None
    few_runs: bool | None = None  # fewer than FEW_RUNS values on a side; None without a comparison
    best: bool = False  # best mean of this metric within the row's group
    values: tuple[float, ...] = field(default=(), repr=False)


@dataclass
class Row:
    """The runs of one condition: the column values, run count, and one summary per metric column."""

    condition: dict[str, object]  # the full condition, as condition_of gives it (task included)
    columns: dict[str, object]  # column name -> value, MISSING where the condition lacks the key
    runs: int
    metrics: dict[str, MetricSummary | None]  # every row has the same metric columns, in order
    baseline: str | None = None  # None for a CE row; else "matched", "none" or "several"
    ce_matches: int = 0  # how many CE conditions match (a CE row: 0)

    @property
    def is_baseline(self) -> bool:
        return self.columns.get("loss") == BASELINE_LOSS


# ---------------------------------------------------------------- finding and loading result files


def _as_list(paths: str | Path | Iterable[str | Path]) -> list[str | Path]:
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


def find_results(paths: str | Path | Iterable[str | Path], warn: Callable[[str], None] = print_to_stderr) -> list[Path]:
    """Every ``*.json`` file below the given folders (following links) plus the given files, sorted.

    Each file counts once, however often it is reached (``d`` and ``d/../d``, or through a link).
    A folder that cannot be read, a broken link and a link back into its own folder are skipped
    with one ``warn`` line each.
    """
    found: dict[Path, Path] = {}  # resolved path -> the path it was first reached by
    for path in map(Path, _as_list(paths)):
        if not path.exists():
            raise HemError(f"no such file or directory: {path}")
        if path.is_dir():
            _walk(path, found, warn, frozenset())
        else:
            found.setdefault(path.resolve(), path)
    return sorted(found.values())


def _walk(folder: Path, found: dict[Path, Path], warn: Callable[[str], None], ancestors: frozenset) -> None:
    real = folder.resolve()
    if real in ancestors:
        warn(f"skipping {folder}: a link back to {real}, which is already being searched")
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        warn(f"skipping {folder}: cannot read the folder ({error.strerror or error})")
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.is_symlink() and not path.exists():
            warn(f"skipping {path}: a broken link (or a loop of links)")
        elif path.is_dir():
            _walk(path, found, warn, ancestors | {real})
        elif entry.name.endswith(".json"):
            found.setdefault(path.resolve(), path)


def load_results(files: Iterable[str | Path], warn: Callable[[str], None] = print_to_stderr) -> list[dict]:
    """The complete results among ``files``; each other file gets one ``warn("skipping ...")`` line.

    Metrics that are not finite numbers are left out of a result, with one warning each; lists and
    mappings (per-class or per-corruption detail) are kept but never tabulated.
    """
    results = []
    for path in files:
        result, reason = _read_result(Path(path))
        if reason is None:
            result["metrics"] = _usable_metrics(result["metrics"], path, warn)
            results.append(result)
        else:
            warn(f"skipping {path}: {reason}")
    return results


def _usable_metrics(metrics: dict, path, warn: Callable[[str], None]) -> dict:
    usable = {}
    for name, value in metrics.items():
        if isinstance(value, (list, dict)) or _is_finite_number(value):
            usable[name] = value
            continue
        if isinstance(value, float):
            what = f"is {value}"
        elif _is_number(value):
            what = f"is too large for a number ({len(str(abs(value)))} digits)"
        else:
            what = f"is not a number ({shown(value, json.dumps)})"
        warn(f"{path}: metric {name!r} {what}; left out of the table")
    return usable


def _is_finite_number(value: object) -> bool:
    try:
        return _is_number(value) and math.isfinite(value)
    except OverflowError:  # an integer beyond the largest float
        return False


def _parse_int(text: str) -> int | float:
    # Python refuses to convert integers of more than 4300 digits; such a metric becomes inf (and is
    # then left out with a warning) instead of making the whole file unreadable.
    return int(text) if len(text) <= 4000 else float(text)


def _read_result(path: Path) -> tuple[dict | None, str | None]:
    """``(result, None)``, or ``(None, why this file is not a complete result)``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_int=_parse_int)
    except OSError as error:
        return None, f"cannot read it ({error.strerror or error})"
    except UnicodeDecodeError:
        return None, "not a text file"
    except json.JSONDecodeError as error:
        return None, f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
    except RecursionError:
        return None, "nested too deeply to be a result"
    reason = _problem_with(data)
    return (None, reason) if reason else (data, None)


def _problem_with(data: object) -> str | None:
    if not isinstance(data, dict):
        return f"not a result (a JSON {_json_type(data)}, not an object)"
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        return f"not a result (no {', '.join(missing)})"
    if data["schema_version"] not in SUPPORTED_SCHEMA_VERSIONS:
        return f"unsupported schema_version {data['schema_version']!r} (this hem reads 1)"
    if data.get("status") != "complete":
        return f"run not complete (status {data.get('status')!r})"
    if not isinstance(data["recipe"], dict) or not isinstance(data["metrics"], dict):
        return "not a result (recipe and metrics must be objects)"
    return None


def _json_type(data: object) -> str:
    names = {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(data), "null" if data is None else type(data).__name__)


# ---------------------------------------------------------------- conditions and columns


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _condition(result: dict) -> dict[str, object]:
    """The result's condition; ``task`` from the result where the recipe lacks it."""
    condition = condition_of(result["recipe"])
    condition.setdefault("task", result["task"])
    return condition


def _present(condition: dict[str, object]) -> dict[str, object]:
    """The condition without empty mappings: an old result's ``loss.params: {}`` says nothing."""
    return {key: value for key, value in condition.items() if value != {}}


def _value_key(value: object) -> str:
    return json.dumps(canonical(value), sort_keys=True, allow_nan=True, default=str)


def _condition_key(condition: dict[str, object]) -> tuple:
    """Hashable, and equal for equal conditions whatever the key order."""
    return tuple(sorted((key, _value_key(value)) for key, value in _present(condition).items()))


def _is_loss_param(key: str) -> bool:
    return key == LOSS_PARAMS or key.startswith(LOSS_PARAMS + ".")


def _context_key(condition: dict[str, object]) -> tuple:
    """The condition but for the loss and its parameters: what a loss is compared within."""
    return tuple(item for item in _condition_key(condition)
                 if item[0] != LOSS_KEY and not _is_loss_param(item[0]))


def _column_keys(conditions: list[dict[str, object]]) -> dict[str, str]:
    """{column name: condition key}: the fixed columns and every key whose value varies, in order."""
    present = [_present(condition) for condition in conditions]
    all_keys = sorted({key for condition in present for key in condition})
    varying = [key for key in all_keys if key not in FIXED_COLUMNS.values() and _varies(key, present)]
    names = short_names(all_keys)
    name = {key: key if names[key] in RESERVED_NAMES else names[key] for key in varying}
    before_loss = [key for key in varying if not key.startswith("loss.")]
    loss_other = [key for key in varying if key.startswith("loss.") and not _is_loss_param(key)]
    loss_params = [key for key in varying if _is_loss_param(key)]
    columns = {column: FIXED_COLUMNS[column] for column in ("task", "dataset", "arch")}
    columns.update((name[key], key) for key in before_loss)
    columns["loss"] = LOSS_KEY
    columns.update((name[key], key) for key in loss_other + loss_params)
    return columns


def _varies(key: str, present: list[dict[str, object]]) -> bool:
    """Whether ``key`` takes more than one value (absent counts as one) among the conditions; a loss
    parameter only among those of one loss (HEM's M is no column of a CE-vs-HEM table until it varies)."""
    seen: dict[object, set] = {}
    for condition in present:
        group = condition.get(LOSS_KEY) if _is_loss_param(key) else None
        seen.setdefault(group, set()).add(_value_key(condition[key]) if key in condition else None)
    return any(len(values) > 1 for values in seen.values())


def _natural(value: object) -> tuple:
    """Sort order of a column value: numbers by size, then other values by their spelling, missing last."""
    if value is MISSING:
        return (2, 0.0, "")
    if _is_number(value) and not (isinstance(value, float) and math.isnan(value)):
        return (0, float(value), "")
    return (1, 0.0, spell(value))


def _row_order(row: Row) -> tuple:
    """The columns in order; the loss column puts CE first."""
    return tuple((name == "loss" and value != BASELINE_LOSS, _natural(value)) for name, value in row.columns.items())


# ---------------------------------------------------------------- statistics


def _metric_names(results: list[dict]) -> list[str]:
    """The numeric metrics in the results, in order of first appearance."""
    names: dict[str, None] = {}
    for result in results:
        names.update((name, None) for name, value in result["metrics"].items() if _is_number(value))
    return list(names)


def _select_metrics(present: list[str], requested: str | Sequence[str] | None) -> list[str]:
    """``requested`` (names or comma-separated names), checked and in that order; all if None."""
    if requested is None:
        return present
    requested = [requested] if isinstance(requested, str) else requested
    names = [name.strip() for item in requested for name in item.split(",") if name.strip()]
    if not names:
        raise HemError(f"--metrics names no metric; present: {', '.join(present)}")
    for name in names:
        if name not in present:
            raise unknown_name("metric", name, present)
    return list(dict.fromkeys(names))


def summarize(values: Sequence[float]) -> MetricSummary:
    """Mean, sample std (ddof=1; None for one value) and count of finite ``values``.

    Computed on values scaled by a power of two (exact), so that 1e308s average without overflow.
    """
    values = tuple(float(value) for value in values)
    scale = math.ldexp(1.0, math.frexp(max(map(abs, values)))[1] - 1) if any(values) else 1.0
    scaled = [value / scale for value in values]
    std = statistics.stdev(scaled) * scale if len(values) > 1 else None
    return MetricSummary(statistics.fmean(scaled) * scale, std, len(values), values=values)


def _summarize_condition(runs: list[dict], columns: dict[str, str], metric_names: list[str]) -> Row:
    condition = _condition(runs[0])
    present = _present(condition)
    metrics = {}
    for name in metric_names:
        values = [run["metrics"][name] for run in runs if _is_number(run["metrics"].get(name))]
        metrics[name] = summarize(values) if values else None
    cells = {column: present.get(key, MISSING) for column, key in columns.items()}
    return Row(condition, cells, len(runs), metrics)


def _stats():
    """``scipy.stats``, or None without scipy (slow to import: only when a p-value is needed)."""
    try:
        from scipy import stats
    except ImportError:
        return None
    return stats


def _t_test_p(values: Sequence[float], baseline: Sequence[float]) -> float | None:
    """Two-sided p of the equal-variance two-sample t-test; None without scipy or when undefined."""
    stats = _stats()
    if stats is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant samples: scipy warns and returns nan
        p = float(stats.ttest_ind(values, baseline, equal_var=True).pvalue)
    return p if math.isfinite(p) else None


def _confidence_interval(summary: MetricSummary, baseline: MetricSummary) -> tuple[float, float] | None:
    """The pooled-variance t interval of ``summary.mean - baseline.mean``; None without scipy."""
    stats = _stats()
    if stats is None:
        return None
    n1, n2 = summary.n, baseline.n
    degrees = n1 + n2 - 2
    # products, not ** 2: a std near 1e308 squares to inf instead of raising OverflowError
    pooled_variance = ((n1 - 1) * summary.std * summary.std + (n2 - 1) * baseline.std * baseline.std) / degrees
    half_width = float(stats.t.ppf((1 + CONFIDENCE) / 2, degrees)) * math.sqrt(pooled_variance * (1 / n1 + 1 / n2))
    return summary.delta - half_width, summary.delta + half_width


def _compare(summary: MetricSummary | None, baseline: MetricSummary | None) -> None:
    """Fill ``summary``'s comparison with the CE summary ``baseline`` of the same metric."""
    if summary is None or baseline is None:
        return
    summary.delta = summary.mean - baseline.mean
    summary.few_runs = min(summary.n, baseline.n) < FEW_RUNS
    if min(summary.n, baseline.n) < 2:  # no spread estimate on one side: no test, no interval
        return
    summary.p = _t_test_p(summary.values, baseline.values)
    interval = _confidence_interval(summary, baseline)
    if interval is not None:
        summary.ci_low, summary.ci_high = interval


def _compare_to_baseline(rows: list[Row]) -> None:
    """Compare every non-CE row with the one CE row of its context; else record that none or several match."""
    candidates: dict[tuple, list[Row]] = {}
    for row in rows:
        if row.is_baseline:
            candidates.setdefault(_context_key(row.condition), []).append(row)
    for row in rows:
        if row.is_baseline:
            continue
        matches = candidates.get(_context_key(row.condition), [])
        row.ce_matches = len(matches)
        row.baseline = {0: "none", 1: "matched"}.get(len(matches), "several")
        if len(matches) == 1:
            for name, summary in row.metrics.items():
                _compare(summary, matches[0].metrics[name])


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is the better one: errors, losses, calibration error
    (``ece``), negative log-likelihood (``nll``) and false-positive rates (``fpr...``, e.g. ``fpr95``);
    every other metric (accuracy, AUROC, mIoU, ...) is better when higher."""
    name = metric.lower()
    return "error" in name or "loss" in name or name in ("ece", "nll") or name.startswith("fpr")


def _mark_best(rows: list[Row]) -> None:
    """Mark the best mean of each metric among the rows that differ only in the loss (2 or more rows)."""
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        groups.setdefault(_context_key(row.condition), []).append(row)
    for group in groups.values():
        for name in group[0].metrics:
            summaries = [row.metrics[name] for row in group if row.metrics[name] is not None]
            if len(summaries) < 2:
                continue
            pick = min if lower_is_better(name) else max
            best = pick(summary.mean for summary in summaries)
            for summary in summaries:
                summary.best = summary.mean == best


def build_rows(results: list[dict], metrics: str | Sequence[str] | None = None) -> list[Row]:
    """One sorted row per condition; ``metrics`` restricts and orders the metric columns."""
    metric_names = _select_metrics(_metric_names(results), metrics)
    groups: dict[tuple, list[dict]] = {}
    for result in results:
        groups.setdefault(_condition_key(_condition(result)), []).append(result)
    columns = _column_keys([_condition(runs[0]) for runs in groups.values()])
    rows = [_summarize_condition(runs, columns, metric_names) for runs in groups.values()]
    _compare_to_baseline(rows)
    _mark_best(rows)
    return sorted(rows, key=_row_order)


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


def _check_format(fmt: str) -> None:
    if fmt not in _RENDERERS:
        raise unknown_name("format", fmt, FORMATS)


def render(rows: list[Row], fmt: str = "github") -> str:
    """The rows as a github/latex/html table, CSV, or JSON (see the module docstring for the layout)."""
    _check_format(fmt)
    return _RENDERERS[fmt](rows)


# ---------------------------------------------------------------- the whole command


def report(
    paths: str | Path | Iterable[str | Path],
    fmt: str = "github",
    metrics: str | Sequence[str] | None = None,
    warn: Callable[[str], None] = print_to_stderr,
    plot: str | Path | None = None,
) -> str:
    """The report over every result file below ``paths``; skipped files are reported through ``warn``.

    With ``plot``, also writes a PNG of each loss's difference to CE there (``hemcli.report_plot``);
    every check of the plot comes before it is written, and a failed one writes nothing.
    """
    _check_format(fmt)
    if plot is not None:
        from hemcli.report_plot import check_plot_target

        check_plot_target(Path(plot))
    paths = _as_list(paths)
    where = ", ".join(str(path) for path in paths)
    files = find_results(paths, warn)
    if not files:
        raise HemError(f"no result files under {where}")
    results = load_results(files, warn)
    if not results:
        raise HemError(f"no complete result files under {where} ({len(files)} skipped)")
    rows = build_rows(results, metrics)
    text = render(rows, fmt)
    if plot is not None:
        from hemcli.report_plot import write_plot

        write_plot(rows, Path(plot))
    return text
