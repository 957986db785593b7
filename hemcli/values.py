"""The one place where text becomes values: recipe files, flags and ``--set`` all go through here.

PyYAML implements YAML 1.1, which reads numbers the way few people mean them: ``1e-3`` is a string
(a float needs a dot there), ``010`` is eight (octal), ``1:30`` is ninety (base 60), ``yes`` and
``off`` are booleans, ``2024-01-01`` is a date. ``HemLoader`` reads scalars by YAML 1.2's core
schema instead: ``1e-3`` and ``1e3`` are floats, ``010`` is ten, ``0x1f`` and ``0o17`` are what
they say, ``1:30``, ``yes`` and dates stay strings (and are then refused where a number or a
boolean is expected), ``true``/``false`` and ``null``/``~`` are as usual. A key given twice in one
mapping is an error rather than a silent "last one wins".

Which values a key accepts (finite numbers, ranges) is checked by the recipe schema
(``hemcli.recipes.check_value``) with the helpers at the bottom of this module.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from hemcli.errors import HemError, shown

INT64_RANGE = (-(2 ** 63), 2 ** 63 - 1)
MAX_RECIPE_BYTES = 1 << 20  # a recipe is a few hundred bytes; anything this large is not one

_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_CORE_TAGS = {"tag:yaml.org,2002:" + name for name in ("bool", "int", "float", "timestamp")}


class HemLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars and duplicate keys refused (see module docstring)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` then overriding a key is fine
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep)

    def construct_core_int(self, node):
        text = self.construct_scalar(node)
        try:
            if text.startswith(("0x", "0o")):
                return int(text[2:], 16 if text[1] == "x" else 8)
            return int(text, 10)  # "010" is ten: int() with base 10 ignores leading zeros
        except ValueError:  # Python refuses to convert more than 4300 digits
            raise yaml.constructor.ConstructorError(None, None, f"an integer of {len(text)} digits",
                                                    node.start_mark) from None

    def construct_core_float(self, node):
        text = self.construct_scalar(node).lower()
        if text.lstrip("+-") == ".inf":
            return -math.inf if text.startswith("-") else math.inf
        return math.nan if text == ".nan" else float(text)

    def construct_core_bool(self, node):
        return self.construct_scalar(node).lower() == "true"


HemLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _CORE_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# Order matters: the first matching resolver wins, and "7" matches both the int and float patterns.
HemLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
HemLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
HemLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+.0123456789"))
HemLoader.add_constructor("tag:yaml.org,2002:int", HemLoader.construct_core_int)
HemLoader.add_constructor("tag:yaml.org,2002:float", HemLoader.construct_core_float)
HemLoader.add_constructor("tag:yaml.org,2002:bool", HemLoader.construct_core_bool)


# The most nodes a document may hold once its aliases are expanded. A recipe has a few hundred; an
# alias bomb ("billion laughs": nine lists of nine aliases of the one before) composes in a few
# hundred bytes to a graph of a hundred nodes that expands to 9 ** 9 of them. Everything after
# loading (the schema's checks, deep copies, JSON) walks the expanded tree, so the budget is
# counted on the composed graph before anything is constructed: no time or memory is spent on it.
MAX_YAML_NODES = 100_000


class TooLarge(yaml.YAMLError):
    """A document whose aliases expand beyond ``MAX_YAML_NODES`` nodes, or refer to themselves."""


def expanded_size(root) -> int:
    """Nodes of the composed graph ``root`` with every alias expanded, counted without expanding:
    each distinct node's size once (memoised), so an alias bomb costs its own few hundred steps.
    Raises ``TooLarge`` past the budget or on an alias inside itself (``&a [*a]``)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = ([part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[key] > MAX_YAML_NODES:
                raise TooLarge(f"its aliases expand to more than {MAX_YAML_NODES} values")
            continue
        if key in open_nodes:
            raise TooLarge("an alias refers to the mapping or list it is in")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def load_yaml(text: str):
    """``text`` read as YAML by ``HemLoader``; raises yaml.YAMLError (``TooLarge`` for a document
    beyond the node budget) or RecursionError."""
    loader = HemLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_value(text: str):
    """A flag or ``--set`` value: ``"1e-3"`` -> 0.001, ``"[1, 2]"`` -> [1, 2]; HemError if unreadable."""
    try:
        return load_yaml(text)
    except TooLarge as err:
        raise HemError(f"cannot read value {shown(text)}: {err}") from None
    except (yaml.YAMLError, RecursionError):
        raise HemError(f"cannot read value {shown(text)}") from None


def read_yaml_file(path: Path, what: str = "recipe"):
    """A YAML file's content; every way it can be unreadable is one HemError naming the file."""
    if not path.is_file():
        raise HemError(f"{what} file not found: {path}" if not path.exists() else f"{what} {path} is not a file")
    from hemcli.fileio import read_regular

    try:
        raw = read_regular(path, MAX_RECIPE_BYTES)
    except OSError as err:
        raise HemError(f"cannot read {what} {path}: {err.strerror or err}") from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise HemError(f"{what} {path} is larger than {MAX_RECIPE_BYTES >> 20} MiB; is it a {what}?")
    try:
        return load_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise HemError(f"{what} {path} is not UTF-8 text") from None
    except RecursionError:
        raise HemError(f"{what} {path} is nested too deeply to be a {what}") from None
    except TooLarge as err:
        raise HemError(f"{what} {path} is too large to be a {what}: {err}") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise HemError(f"malformed YAML in {path}{line}: {getattr(err, 'problem', None) or err}") from None


# ---------------------------------------------------------------- checks shared by every key


def _number(bound) -> str:
    """A bound as written in a recipe: 1 rather than 1.0, 9223372036854775807 rather than 9.22e+18."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def check_int(key: str, value: int, minimum=None, maximum=None) -> int:
    low = INT64_RANGE[0] if minimum is None else minimum
    high = INT64_RANGE[1] if maximum is None else maximum
    if not low <= value <= high:
        bound = f">= {_number(low)}" if value < low else f"<= {_number(high)}"
        raise HemError(f"recipe key {key!r} must be {bound}, got {shown(value)}")
    return value


def check_float(key: str, value, minimum=None, maximum=None) -> float:
    """``value`` (an int or float) as a finite float within the bounds, or a HemError naming ``key``."""
    try:
        number = float(value)
    except OverflowError:
        raise HemError(f"recipe key {key!r} is out of range for a number, got {shown(value)}") from None
    if not math.isfinite(number):
        raise HemError(f"recipe key {key!r} must be a finite number, got {shown(value)}")
    if minimum is not None and number < minimum:
        raise HemError(f"recipe key {key!r} must be >= {_number(minimum)}, got {shown(value)}")
    if maximum is not None and number > maximum:
        raise HemError(f"recipe key {key!r} must be <= {_number(maximum)}, got {shown(value)}")
    return number


def check_plain(key: str, value):
    """Free-form values (``loss.params``): JSON-like data, ints in int64 and finite floats only."""
    if isinstance(value, dict):
        return {name: check_plain(f"{key}.{name}", item) for name, item in value.items()}
    if isinstance(value, list):
        return [check_plain(f"{key}[{i}]", item) for i, item in enumerate(value)]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return check_int(key, value)
    if isinstance(value, float):
        check_float(key, value)
        return value
    raise HemError(f"recipe key {key!r} must be a number, string, list or mapping, got {shown(value)}")
