"""`hem report`: one table over many result files, mean ± std across seeds, and the difference to CE.

Every ``hem <task>`` run writes one result JSON. This module finds them below the given paths, groups
runs that differ only in seed (same task, dataset, arch, loss and any extra grouping key such as a
continual-learning strategy), and summarizes each metric per group:

* ``mean`` and the sample standard deviation ``std`` (ddof=1) over the runs that report the metric,
  and ``n``, how many runs that is. A single run has no spread estimate: ``std`` is ``None``
  (``null`` in JSON, empty in CSV, ``—`` in the tables).
* Where the same (task, dataset, arch, extra keys) also has a ``ce`` row, and both it and the row have
  at least two runs with the metric: ``delta`` = mean − CE mean and ``p``, the two-sample t-test
  (equal variances, ``scipy.stats.ttest_ind``) of the row's values against CE's; ``p < 0.05`` is
  marked ``*`` in the tables. Otherwise both are ``None``; ``p`` is also ``None`` without scipy.

Table layout (github, latex): the grouping columns (task, dataset, arch, extra keys present, loss),
``n`` (runs in the group), then per metric a ``mean ± std`` cell (with ``(n=k)`` appended when the metric
is missing from some of the group's runs) and, for metrics with any CE comparison, ``<metric> vs ce``
and ``<metric> p``. CSV has full-precision ``<metric>_mean/_std/_n/_delta/_p`` columns; JSON is a list
of ``{<grouping keys>, "n", "metrics": {<metric>: {mean, std, n, delta, p} or null}}``.

No torch here (and scipy only when a p-value is needed): the report must be fast and work without them.
"""

from __future__ import annotations

import csv
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

FORMATS = ("github", "latex", "csv", "json")
SUPPORTED_SCHEMA_VERSIONS = (1,)
REQUIRED_KEYS = ("schema_version", "task", "recipe", "metrics")
BASELINE_LOSS = "ce"
SIGNIFICANCE_LEVEL = 0.05


def print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _dig(mapping: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def _recipe_name(result: dict, section: str, name_field: str = "name") -> str | None:
    """``recipe[section][name_field]``, or ``recipe[section]`` itself when it is a plain value."""
    value = _dig(result, "recipe", section)
    if isinstance(value, dict):
        value = value.get(name_field)
    return None if value is None else str(value)


# The columns that define a group, in display and sort order: (column name, getter).
# A task that adds a grouping key to its recipe adds one line here (before "loss").
GROUP_KEYS: list[tuple[str, Callable[[dict], str | None]]] = [
    ("task", lambda result: str(result["task"])),
    ("dataset", lambda result: _recipe_name(result, "dataset")),
    ("arch", lambda result: _recipe_name(result, "model", "arch")),
    ("strategy", lambda result: _recipe_name(result, "strategy")),
    ("scenario", lambda result: _recipe_name(result, "scenario")),
    ("loss", lambda result: _recipe_name(result, "loss")),
]
# Shown even when empty; the other grouping columns appear only when some result has them.
ALWAYS_SHOWN_KEYS = ("task", "dataset", "arch", "loss")


@dataclass
class MetricSummary:
    """One metric over the runs of one group."""

    mean: float
    std: float | None  # None for a single run
    n: int
    delta: float | None = None  # mean minus the CE row's mean
    p: float | None = None  # two-sample t-test against the CE row
    values: tuple[float, ...] = field(default=(), repr=False)


@dataclass
class Row:
    """One group of runs: its grouping values, run count, and one summary per metric column."""

    keys: dict[str, str | None]
    runs: int
    metrics: dict[str, MetricSummary | None]  # every row has the same metric columns, in order


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


# ---------------------------------------------------------------- grouping and statistics


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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


def _group_columns(results: list[dict]) -> list[tuple[str, Callable[[dict], str | None]]]:
    return [
        (name, getter)
        for name, getter in GROUP_KEYS
        if name in ALWAYS_SHOWN_KEYS or any(getter(result) is not None for result in results)
    ]


def _group_by(results: list[dict], columns) -> dict[tuple, list[dict]]:
    """Results grouped by their ``((column, value), ...)``; the seed is not a column."""
    groups: dict[tuple, list[dict]] = {}
    for result in results:
        keys = tuple((name, getter(result)) for name, getter in columns)
        groups.setdefault(keys, []).append(result)
    return groups


def summarize(values: Sequence[float]) -> MetricSummary:
    """Mean, sample std (ddof=1; None for one value) and count of finite ``values``.

    Computed on values scaled by a power of two (exact), so that 1e308s average without overflow.
    """
    values = tuple(float(value) for value in values)
    scale = math.ldexp(1.0, math.frexp(max(map(abs, values)))[1] - 1) if any(values) else 1.0
    scaled = [value / scale for value in values]
    std = statistics.stdev(scaled) * scale if len(values) > 1 else None
    return MetricSummary(statistics.fmean(scaled) * scale, std, len(values), values=values)


def _summarize_group(keys: tuple, runs: list[dict], metric_names: list[str]) -> Row:
    metrics = {}
    for name in metric_names:
        values = [run["metrics"][name] for run in runs if _is_number(run["metrics"].get(name))]
        metrics[name] = summarize(values) if values else None
    return Row(dict(keys), len(runs), metrics)


def _t_test_p(values: Sequence[float], baseline: Sequence[float]) -> float | None:
    """Two-sided p of the equal-variance two-sample t-test; None without scipy or when undefined."""
    try:
        from scipy import stats  # slow to import: only when a p-value is needed
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant samples: scipy warns and returns nan
        p = float(stats.ttest_ind(values, baseline, equal_var=True).pvalue)
    return p if math.isfinite(p) else None


def _compare(summary: MetricSummary | None, baseline: MetricSummary | None) -> None:
    if summary is None or baseline is None or min(summary.n, baseline.n) < 2:
        return
    summary.delta = summary.mean - baseline.mean
    summary.p = _t_test_p(summary.values, baseline.values)


def _compare_to_baseline(rows: list[Row]) -> None:
    """Fill ``delta`` and ``p`` of every non-CE row that has a CE row with the same other keys."""
    by_keys = {tuple(row.keys.items()): row for row in rows}
    for row in rows:
        baseline = by_keys.get(tuple({**row.keys, "loss": BASELINE_LOSS}.items()))
        if baseline is None or baseline is row:
            continue
        for name, summary in row.metrics.items():
            _compare(summary, baseline.metrics[name])


def _row_order(row: Row) -> tuple:
    """Grouping columns in order, missing values last; the loss column puts CE first."""
    order = []
    for name, value in row.keys.items():
        order.append((name == "loss" and value != BASELINE_LOSS, value is None, value or ""))
    return tuple(order)


def build_rows(results: list[dict], metrics: str | Sequence[str] | None = None) -> list[Row]:
    """One sorted row per group of results; ``metrics`` restricts and orders the metric columns."""
    metric_names = _select_metrics(_metric_names(results), metrics)
    groups = _group_by(results, _group_columns(results))
    rows = [_summarize_group(keys, runs, metric_names) for keys, runs in groups.items()]
    _compare_to_baseline(rows)
    return sorted(rows, key=_row_order)


# ---------------------------------------------------------------- rendering


def _format_summary(summary: MetricSummary | None, runs: int) -> str:
    if summary is None:
        return ""
    std = "—" if summary.std is None else f"{summary.std:.2f}"
    text = f"{summary.mean:.2f} ± {std}"
    return text if summary.n == runs else f"{text} (n={summary.n})"


def _format_delta(summary: MetricSummary | None) -> str:
    return "" if summary is None or summary.delta is None else f"{summary.delta:+.2f}"


def _format_p(summary: MetricSummary | None) -> str:
    if summary is None or summary.p is None:
        return ""
    text = "<0.001" if summary.p < 0.001 else f"{summary.p:.3f}"
    return text + ("*" if summary.p < SIGNIFICANCE_LEVEL else "")


def _compared_metrics(rows: list[Row]) -> set[str]:
    """Metrics with a CE comparison in some row: only these get ``vs ce`` and ``p`` columns."""
    return {
        name for row in rows for name, summary in row.metrics.items() if summary and summary.delta is not None
    }


def _text_headers(rows: list[Row], compared: set[str]) -> list[str]:
    if not rows:
        return []
    headers = [*rows[0].keys, "n"]
    for name in rows[0].metrics:
        headers += [name, f"{name} vs ce", f"{name} p"] if name in compared else [name]
    return headers


def _text_cells(row: Row, compared: set[str]) -> list[str]:
    cells = [value or "" for value in row.keys.values()] + [str(row.runs)]
    for name, summary in row.metrics.items():
        cells.append(_format_summary(summary, row.runs))
        if name in compared:
            cells += [_format_delta(summary), _format_p(summary)]
    return cells


def _render_table(rows: list[Row], tablefmt: str) -> str:
    from tabulate import tabulate

    compared = _compared_metrics(rows)
    headers = _text_headers(rows, compared)
    key_count = len(rows[0].keys) if rows else 0
    align = ["left"] * key_count + ["right"] * (len(headers) - key_count)  # numbers right-aligned
    cells = [_text_cells(row, compared) for row in rows]
    return tabulate(cells, headers=headers, tablefmt=tablefmt, disable_numparse=True, colalign=align)


def _csv_value(value: object) -> object:
    return "" if value is None else value


def _render_csv(rows: list[Row]) -> str:
    metric_names = list(rows[0].metrics) if rows else []
    header = [*(rows[0].keys if rows else []), "n"]
    header += [f"{name}_{stat}" for name in metric_names for stat in ("mean", "std", "n", "delta", "p")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        stats = [_summary_dict(summary) for summary in row.metrics.values()]
        values = [stat.get(key) for stat in stats for key in ("mean", "std", "n", "delta", "p")]
        writer.writerow([_csv_value(value) for value in [*row.keys.values(), row.runs, *values]])
    return buffer.getvalue()


def _finite_or_none(value: float | None) -> float | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _summary_dict(summary: MetricSummary | None) -> dict:
    if summary is None:
        return {}
    stats = {"mean": summary.mean, "std": summary.std, "n": summary.n, "delta": summary.delta, "p": summary.p}
    return {key: _finite_or_none(value) for key, value in stats.items()}


def _render_json(rows: list[Row]) -> str:
    records = [
        {**row.keys, "n": row.runs, "metrics": {name: _summary_dict(s) or None for name, s in row.metrics.items()}}
        for row in rows
    ]
    return json.dumps(records, indent=2)


_RENDERERS: dict[str, Callable[[list[Row]], str]] = {
    "github": lambda rows: _render_table(rows, "github"),
    "latex": lambda rows: _render_table(rows, "latex_booktabs"),
    "csv": _render_csv,
    "json": _render_json,
}


def _check_format(fmt: str) -> None:
    if fmt not in _RENDERERS:
        raise unknown_name("format", fmt, FORMATS)


def render(rows: list[Row], fmt: str = "github") -> str:
    """The rows as a github/latex table, CSV, or JSON (see the module docstring for the layout)."""
    _check_format(fmt)
    return _RENDERERS[fmt](rows)


# ---------------------------------------------------------------- the whole command


def report(
    paths: str | Path | Iterable[str | Path],
    fmt: str = "github",
    metrics: str | Sequence[str] | None = None,
    warn: Callable[[str], None] = print_to_stderr,
) -> str:
    """The report over every result file below ``paths``; skipped files are reported through ``warn``."""
    _check_format(fmt)
    paths = _as_list(paths)
    where = ", ".join(str(path) for path in paths)
    files = find_results(paths, warn)
    if not files:
        raise HemError(f"no result files under {where}")
    results = load_results(files, warn)
    if not results:
        raise HemError(f"no complete result files under {where} ({len(files)} skipped)")
    return render(build_rows(results, metrics), fmt)
