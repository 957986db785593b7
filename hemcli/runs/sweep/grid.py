"""A grid of runs from lists: ``--loss ce,hem --seed 0-4 --set loss.params.M=500,2000``, or a
``grid:`` block in the recipe file.

Each axis is a recipe key with a list of values. A comma separates values (except inside brackets,
so ``--set schedule.milestones=[30,60],[60,90]`` is two values), ``A-B`` is the integers A..B, and
each value is read like a ``--set`` value. The runs are every combination, seeds innermost; a loss
parameter axis applies only to the losses that take the parameter (CE runs once, not once per M).
"""
from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Mapping, Sequence

from hemcli import values
from hemcli.errors import HemError, shown
from hemcli.runs.spec import FLAG_KEYS, TEXT_FLAGS, RunSpec, plan_run

_RANGE = re.compile(r"^(\d+)-(\d+)$")
LOSS_PARAMS = "loss.params."
Axis = tuple[str, list]  # (recipe key, values)


def split_values(text: str, where: str) -> list[str]:
    """``a,[1,2],b`` -> ["a", "[1,2]", "b"]; an empty value is an error naming ``where``."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    if not text.strip():
        raise HemError(f"{where}: an empty list of values")
    if any(not part.strip() for part in parts):
        raise HemError(f"{where}: an empty value in {shown(text)}")
    return [part.strip() for part in parts]


def expand_range(value: object, where: str) -> list:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; anything else -> [value]."""
    match = _RANGE.match(value) if isinstance(value, str) else None
    if match is None:
        return [value]
    first, last = int(match[1]), int(match[2])
    if last < first:
        raise HemError(f"{where}: the range {value} runs backwards; write {last}-{first}")
    return list(range(first, last + 1))


def flag_axis(flag: str, text: str) -> Axis:
    where = f"--{flag.replace('_', '-')}"
    items = split_values(text, where)
    parsed = [item if flag in TEXT_FLAGS else _read(item, where) for item in items]
    return FLAG_KEYS[flag], [v for item in parsed for v in expand_range(item, where)]


def set_axis(assignment: str) -> Axis:
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise HemError(f"--set needs KEY=VALUE[,VALUE...], got {shown(assignment)}")
    where = f"--set {key}"
    parsed = [_read(item, where) for item in split_values(text, where)]
    return key, [v for item in parsed for v in expand_range(item, where)]


def _read(text: str, where: str) -> object:
    try:
        return values.read_value(text)
    except HemError as err:
        raise HemError(f"{where}: {err}") from None


def file_axes(grid: object, recipe: Path) -> list[Axis]:
    """The ``grid:`` block of a recipe: ``{key: [values] or "A-B" or value}``, keys dotted or nested."""
    if not isinstance(grid, dict) or not grid:
        raise HemError(f"recipe {recipe}: grid must be a mapping of recipe keys to lists of values")
    axes = []
    for key, value in _grid_leaves(grid):
        where = f"grid key {key} in {recipe}"
        items = value if isinstance(value, list) else [value]
        if not items:
            raise HemError(f"{where}: an empty list of values")
        axes.append((key, [v for item in items for v in expand_range(item, where)]))
    return axes


def _grid_leaves(grid: Mapping, prefix: str = ""):
    for name, value in grid.items():
        if isinstance(value, dict) and value:
            yield from _grid_leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def merge_axes(*groups: Sequence[Axis]) -> list[Axis]:
    """All axes, each key once (given twice is an error), the seed axis last."""
    axes: dict[str, list] = {}
    for key, items in (axis for group in groups for axis in group):
        if key in axes:
            raise HemError(f"{key} is given twice in the grid; give its values in one list")
        axes[key] = items  # a value given twice plans one run twice: the planner keeps it once
    seed = axes.pop("seed", None)
    return [*axes.items(), *([("seed", seed)] if seed is not None else [])]


def check_loss_params(axes: list[Axis], base_loss: str) -> None:
    """A loss-parameter axis must belong to some loss of the grid."""
    from hemcli.losses import LOSSES

    losses = dict(axes).get("loss.name", [base_loss])
    for key, _ in axes:
        if key.startswith(LOSS_PARAMS):
            name = key[len(LOSS_PARAMS):]
            if not any(name in LOSSES[loss].defaults for loss in losses if loss in LOSSES):
                takes = "; ".join(f"{loss}: {', '.join(LOSSES[loss].defaults) or 'none'}"
                                  for loss in losses if loss in LOSSES)
                raise HemError(f"loss parameter {name!r} is taken by no loss of the grid ({takes})")


def plan_grid(task: str, recipe, axes: list[Axis], sets: Sequence[str], out) -> list[RunSpec]:
    """Every run of the grid, resolved and named; runs that turn out the same (CE under an M axis) once."""
    from hemcli.losses import LOSSES

    base_loss = plan_run(task, recipe, {}, sets, out, drop_foreign_params=True).cfg["loss"]["name"]
    check_loss_params(axes, base_loss)
    sweeps_losses = "loss.name" in dict(axes)
    specs: dict[str, RunSpec] = {}
    for combination in itertools.product(*(items for _, items in axes)):
        point = dict(zip((key for key, _ in axes), combination))
        loss = point.get("loss.name", base_loss)
        takes = LOSSES[loss].defaults if loss in LOSSES else {}
        point = {key: value for key, value in point.items()
                 if not key.startswith(LOSS_PARAMS) or key[len(LOSS_PARAMS):] in takes}
        spec = plan_run(task, recipe, point, sets, out, drop_foreign_params=sweeps_losses)
        specs.setdefault(spec.name, spec)
    return list(specs.values())
