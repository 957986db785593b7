"""Rows of a report: results grouped by condition, the varying keys as columns, each metric
summarized, compared with the matched CE condition, and the best mean marked."""
from __future__ import annotations

import json
import math
import statistics
import warnings
from dataclasses import dataclass, field, replace
from typing import Sequence

from hemcli.report.names import lower_is_better, select_metrics
from hemcli.report.reading import is_number
from hemcli.runs.condition import canonical, condition_of, short_names, spell

SUPPORTED_SCHEMA_VERSIONS = (1,)
REQUIRED_KEYS = ("schema_version", "task", "recipe", "metrics")
BASELINE_LOSS = "ce"
SIGNIFICANCE_LEVEL = 0.05
CONFIDENCE = 0.95
FEW_RUNS = 3  # a comparison with fewer runs than this on a side is flagged

# The columns every table has: (column name, condition key), in display order; "loss" comes after the
# other varying keys and before the loss's parameters.
FIXED_COLUMNS = {"task": "task", "dataset": "dataset.name", "benchmark": "benchmark.name",
                 "scenario": "benchmark.scenario", "strategy": "strategy.name", "arch": "model.arch",
                 "encoder": "model.encoder", "loss": "loss.name"}
# Fixed columns shown only where some condition has the key (a continual run has no dataset.name, a
# classify run no strategy, only a segment run has an encoder)
OPTIONAL_COLUMNS = ("dataset", "benchmark", "scenario", "strategy", "encoder")
LOSS_KEY = "loss.name"
LOSS_PARAMS = "loss.params"
# Names a varying key's column may not take, because a fixed column or a JSON/CSV field has them.
RESERVED_NAMES = {*FIXED_COLUMNS, "n", "baseline", "ce_matches", "condition", "metrics"}



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
    seeds: tuple = ()  # the runs' seeds, sorted (None for a result without one)

    @property
    def is_baseline(self) -> bool:
        return self.columns.get("loss") == BASELINE_LOSS


# ---------------------------------------------------------------- conditions and columns


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
    columns = {column: FIXED_COLUMNS[column] for column in FIXED_COLUMNS if column != "loss"
               and (column not in OPTIONAL_COLUMNS or any(FIXED_COLUMNS[column] in c for c in present))}
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
    if is_number(value) and not (isinstance(value, float) and math.isnan(value)):
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
        names.update((name, None) for name, value in result["metrics"].items() if is_number(value))
    return list(names)


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
        values = [run["metrics"][name] for run in runs if is_number(run["metrics"].get(name))]
        metrics[name] = summarize(values) if values else None
    cells = {column: present.get(key, MISSING) for column, key in columns.items()}
    seeds = sorted((run["recipe"].get("seed", run.get("seed")) for run in runs), key=_natural)
    return Row(condition, cells, len(runs), metrics, seeds=tuple(seeds))


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
    """One sorted row per condition; ``metrics`` (names, groups, ``headline`` or ``all``:
    ``names.select_metrics``) restricts and orders the metric columns, all of them by default."""
    metric_names = select_metrics(_metric_names(results), metrics)
    groups: dict[tuple, list[dict]] = {}
    for result in results:
        groups.setdefault(_condition_key(_condition(result)), []).append(result)
    columns = _column_keys([_condition(runs[0]) for runs in groups.values()])
    rows = [_summarize_condition(runs, columns, metric_names) for runs in groups.values()]
    _compare_to_baseline(rows)
    _mark_best(rows)
    return sorted(rows, key=_row_order)


def keep_metrics(rows: list[Row], names: Sequence[str]) -> list[Row]:
    """Copies of ``rows`` with only the metric columns ``names``, in that order (their comparisons and
    best marks as computed over every metric)."""
    return [replace(row, metrics={name: row.metrics[name] for name in names}) for row in rows]
