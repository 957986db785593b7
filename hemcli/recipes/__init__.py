"""Recipes as data: a YAML file sets defaults, the command line overrides, everything is checked.

A task declares its recipe as a flat schema of dotted keys (``optim.lr``) mapped to ``Field``s.
``resolve`` merges, in order: the schema's defaults, the recipe file, the flags the command has
(``--lr``), then every ``--set key=value``. Unknown keys, wrong types and unknown names are
``HemError``s that name the key and list what is valid; nothing is run before that succeeds.
Text becomes values in one place, ``hemcli.values`` (``1e-3`` is a number, ``010`` is ten).
"""
from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from hemcli import values
from hemcli.errors import HemError, unknown_name, shown
from hemcli.recipes.packaged import Recipe, locate

_TYPE_NAMES = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
               "list[int]": "a list of integers", "list[str]": "a list of strings",
               "dict": "a mapping", "str?": "a string or null", "int?": "an integer or null",
               "float?": "a number or null"}


@dataclass(frozen=True)
class Field:
    """One recipe key: its type (see ``_TYPE_NAMES``), default, valid names, bounds and help text.

    Bounds apply to each element of a list. Without bounds an integer must fit in int64; every
    number must be finite. ``check`` validates a value further (e.g. the form of a device name).
    """

    kind: str
    default: object
    help: str = ""
    choices: Callable[[], Iterable[str]] | tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[str], None] | None = None

    def valid_choices(self) -> list[str] | None:
        if self.choices is None:
            return None
        return list(self.choices() if callable(self.choices) else self.choices)


def _is(kind: str, value: object) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind.endswith("?"):
        return value is None or _is(kind[:-1], value)
    if kind.startswith("list["):
        return isinstance(value, list) and all(_is(kind[5:-1], v) for v in value)
    return isinstance(value, {"str": str, "dict": dict}[kind])


def _bounded(key: str, field: Field, kind: str, value):
    if kind.endswith("?"):
        return None if value is None else _bounded(key, field, kind[:-1], value)
    if kind == "int":
        return values.check_int(key, value, field.minimum, field.maximum)
    if kind == "float":
        return values.check_float(key, value, field.minimum, field.maximum)
    return value


def check_value(key: str, field: Field, value: object) -> object:
    """Return ``value`` typed for ``field`` or raise a one-line HemError naming the key."""
    if not _is(field.kind, value):
        raise HemError(f"recipe key {key!r} must be {_TYPE_NAMES[field.kind]}, got {shown(value)}")
    if field.kind == "dict":
        return values.check_plain(key, value)
    if field.kind.startswith("list["):
        value = [_bounded(key, field, field.kind[5:-1], item) for item in value]
    else:
        value = _bounded(key, field, field.kind, value)
    choices = field.valid_choices()
    if field.kind == "list[str]" and choices is not None and not value:
        # a selection of names (evaluations, scores, threat models): none selected would measure nothing
        raise HemError(f"recipe key {key!r} must name at least one of {', '.join(choices)}, got []")
    names = value if field.kind.startswith("list[") else [] if value is None else [value]
    for name in names if choices is not None else []:
        if name not in choices:
            raise HemError(f"unknown {key} {shown(name)}; valid choices: {', '.join(choices)}")
    if field.check is not None and value is not None:
        field.check(value)
    return value


def _unknown_key(key: str, schema: Mapping[str, Field]) -> HemError:
    close = difflib.get_close_matches(key, list(schema), n=1)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return HemError(f"unknown recipe key {key!r}{hint}; valid keys: {', '.join(sorted(schema))}")


def _dict_field_of(key: str, schema: Mapping[str, Field]) -> str | None:
    """The dict-valued field (``loss.params``) that ``key`` lies below, if any."""
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in schema and schema[prefix].kind == "dict":
            return prefix
    return None


def flatten(tree: Mapping, schema: Mapping[str, Field], prefix: str = "") -> dict[str, object]:
    """Nested recipe -> {dotted key: value}; stops at dict-valued fields such as ``loss.params``."""
    flat = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if key in schema:
            flat[key] = value
        elif isinstance(value, dict) and any(k.startswith(key + ".") for k in schema):
            flat.update(flatten(value, schema, key + "."))
        else:
            raise _unknown_key(key, schema)
    return flat


def unflatten(flat: Mapping[str, object]) -> dict:
    tree: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


GRID_KEY = "grid"  # a recipe's sweep axes: read by `hem sweep`, not part of any one run's recipe
# A recipe's settings for some losses only, e.g. ``by_loss: {ce: {schedule: {warmup_epochs: 10}}}``
# (the paper trains Swin with CE after a longer warm-up): applied when the run's loss is one of them,
# under what the command line sets; the resolved recipe holds the values, not this block.
BY_LOSS_KEY = "by_loss"


def _read_mapping(recipe: Recipe) -> dict:
    data = values.read_yaml_file(recipe.path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HemError(f"recipe {recipe.name} must be a mapping of keys to values, got {type(data).__name__}")
    return data


def read_recipe(recipe: str | Path | Recipe, task: str | None = None) -> dict:
    """The whole mapping of ``--recipe`` (a file, or a packaged recipe: ``hemcli.recipes.packaged``),
    ``grid:`` block included; every way it can be bad is a one-line HemError."""
    return _read_mapping(locate(recipe, task))


def load_recipe_file(recipe: str | Path | Recipe, task: str | None = None) -> dict:
    """Read a recipe YAML (see ``hemcli.values``), without its ``grid:`` block."""
    data = read_recipe(recipe, task)
    data.pop(GRID_KEY, None)
    return data


def _by_loss(block: object, path, schema: Mapping[str, Field]) -> dict[str, dict[str, object]]:
    """A recipe's ``by_loss`` block, checked: loss name -> {dotted key: value}."""
    from hemcli.losses import LOSSES

    if not isinstance(block, dict) or not all(isinstance(v, dict) for v in block.values()):
        raise HemError(f"recipe {path}: {BY_LOSS_KEY} must map loss names to recipe settings, "
                       "e.g. {ce: {schedule: {warmup_epochs: 10}}}")
    for name in block:
        if name not in LOSSES:
            raise unknown_name(f"loss in {path}'s {BY_LOSS_KEY}", name, LOSSES)
    return {name: flatten(settings, schema) for name, settings in block.items()}


def recipe_grid(recipe: str | Path | Recipe, task: str | None = None) -> object:
    """The recipe's ``grid:`` block (``hemcli.runs.sweep.grid`` reads it), or None."""
    return read_recipe(recipe, task).get(GRID_KEY)


def parse_set(assignment: str) -> tuple[str, object]:
    """``optim.lr=1e-3`` -> ("optim.lr", 0.001); the value is read as YAML 1.2 (numbers, lists, true)."""
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise HemError(f"--set needs KEY=VALUE, got {shown(assignment)}")
    try:
        return key.strip(), values.read_value(text)
    except HemError as err:
        raise HemError(f"--set {key.strip()}: {err}") from None


def _assign(flat: dict, key: str, value: object, schema: Mapping[str, Field]) -> None:
    if key in schema:
        flat[key] = value
        return
    parent = _dict_field_of(key, schema)
    if parent is None:
        raise _unknown_key(key, schema)
    params = dict(flat.get(parent) or {})
    params[key[len(parent) + 1:]] = value
    flat[parent] = params


def resolve(schema: Mapping[str, Field], task: str, recipe_path: str | Path | None = None,
            flags: Mapping[str, object] | None = None, sets: Iterable[str] = (), base: Mapping | None = None) -> dict:
    """Defaults <- ``base`` (a resolved recipe, e.g. a finished run's) <- recipe file <- flags <- ``--set``;
    returns the checked, nested recipe."""
    flat = {key: copy.deepcopy(field.default) for key, field in schema.items()}
    if base is not None:
        flat.update(flatten(copy.deepcopy(dict(base)), schema))
    by_loss = {}
    if recipe_path is not None:
        recipe = locate(recipe_path, task)
        from_file = load_recipe_file(recipe)
        if from_file.get("task", task) != task:
            raise HemError(f"recipe {recipe.name} is for task {from_file['task']!r}, not {task!r}")
        if BY_LOSS_KEY in from_file:
            by_loss = _by_loss(from_file.pop(BY_LOSS_KEY), recipe.name, schema)
        flat.update(flatten(from_file, schema))
    given = [(key, value) for key, value in (flags or {}).items() if value is not None]
    given += [parse_set(assignment) for assignment in sets]
    for key, value in given:
        _assign(flat, key, value, schema)
    told = {key for key, _ in given}
    for key, value in by_loss.get(flat.get("loss.name"), {}).items():
        if key not in told:  # the command line wins over the recipe, by_loss included
            flat[key] = value
    return unflatten({key: check_value(key, schema[key], value) for key, value in flat.items()})


def read_text_inputs(recipe: str | Path | Recipe | None, sets: Iterable[str], task: str | None = None) -> None:
    """Read the recipe file and every ``--set`` as YAML, without a schema: what cannot be read (an
    alias bomb, a FIFO, malformed YAML) is refused before a task imports its libraries."""
    if recipe is not None and locate(recipe, task).path.suffix != ".json":  # a result: read as JSON later
        read_recipe(recipe, task)
    for assignment in sets:
        parse_set(assignment)


def get(cfg: Mapping, dotted: str):
    """``get(cfg, "optim.lr")`` on a nested recipe."""
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node
