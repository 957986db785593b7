"""Finding result files below the given paths and reading the complete ones; every file skipped and
every metric left out is named through ``warn``."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Callable, Iterable

from hemcli.errors import HemError, shown
from hemcli.fileio import is_regular

SUPPORTED_SCHEMA_VERSIONS = (1,)
REQUIRED_KEYS = ("schema_version", "task", "recipe", "metrics")


def print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_list(paths: str | Path | Iterable[str | Path]) -> list[str | Path]:
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


def find_results(paths: str | Path | Iterable[str | Path], warn: Callable[[str], None] = print_to_stderr,
                 refuse_irregular: bool = False) -> list[Path]:
    """Every ``*.json`` file below the given folders (following links) plus the given files, sorted.

    Each file counts once, however often it is reached (``d`` and ``d/../d``, or through a link).
    A folder that cannot be read, a broken link and a link back into its own folder are skipped
    with one ``warn`` line each; so is a ``*.json`` that is not a regular file (a FIFO would block
    the read), or, with ``refuse_irregular`` (a command that rewrites results), it is a HemError.
    """
    found: dict[Path, Path] = {}  # resolved path -> the path it was first reached by

    def irregular(path: Path) -> None:
        import os

        from hemcli.fileio import kind_of

        what = f"{kind_of(os.stat(path).st_mode)}, not a regular file"
        if refuse_irregular:
            raise HemError(f"{path} is {what}; a result is a JSON file")
        warn(f"skipping {path}: {what}")

    for path in map(Path, _as_list(paths)):
        if not path.exists():
            raise HemError(f"no such file or directory: {path}")
        if path.is_dir():
            _walk(path, found, warn, frozenset(), irregular)
        elif not is_regular(path):
            irregular(path)
        else:
            found.setdefault(path.resolve(), path)
    return sorted(found.values())


def _walk(folder: Path, found: dict[Path, Path], warn: Callable[[str], None], ancestors: frozenset,
          irregular: Callable[[Path], None]) -> None:
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
            _walk(path, found, warn, ancestors | {real}, irregular)
        elif entry.name.endswith(".json") and not is_regular(path):
            irregular(path)
        elif entry.name.endswith(".json"):
            found.setdefault(path.resolve(), path)


def load_results(files: Iterable[str | Path], warn: Callable[[str], None] = print_to_stderr) -> list[dict]:
    """The complete results among ``files``; each other file gets one ``warn("skipping ...")`` line.

    Metrics that are not finite numbers are left out of a result, with one warning each; lists and
    mappings (per-class or per-corruption detail) are kept but never tabulated.
    """
    results = []
    for path in files:
        result, reason = read_result(Path(path))
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
        elif is_number(value):
            what = f"is too large for a number ({len(str(abs(value)))} digits)"
        else:
            what = f"is not a number ({shown(value, json.dumps)})"
        warn(f"{path}: metric {name!r} {what}; left out of the table")
    return usable


def _is_finite_number(value: object) -> bool:
    try:
        return is_number(value) and math.isfinite(value)
    except OverflowError:  # an integer beyond the largest float
        return False


def _parse_int(text: str) -> int | float:
    # Python refuses to convert integers of more than 4300 digits; such a metric becomes inf (and is
    # then left out with a warning) instead of making the whole file unreadable.
    return int(text) if len(text) <= 4000 else float(text)


def read_result(path: Path) -> tuple[dict | None, str | None]:
    """``(result, None)``, or ``(None, why this file is not a complete result)``."""
    from hemcli.fileio import read_regular

    try:
        data = json.loads(read_regular(path).decode("utf-8"), parse_int=_parse_int)
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


