"""The shape a loaded continual checkpoint must have, checked before any of it is used.

A layout is a Python type (``int`` and ``float`` refuse ``bool``; ``float`` takes an ``int`` too), a
tuple of types, a dict of the exact keys expected with their layouts, ``ListOf(layout)``,
``MapOf(key_layout, value_layout)`` or ``Maybe(layout)`` (None or that layout). ``weights_only``
loading already guarantees that only tensors and plain containers were built; this says whether
they are the ones a hem continual checkpoint holds.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ListOf:
    item: object


@dataclass(frozen=True)
class MapOf:
    key: object
    value: object


@dataclass(frozen=True)
class Maybe:
    layout: object


def fits(value, layout) -> bool:
    """Whether ``value`` has ``layout``, all the way down."""
    if isinstance(layout, ListOf):
        return isinstance(value, list) and all(fits(item, layout.item) for item in value)
    if isinstance(layout, MapOf):
        return isinstance(value, dict) and all(fits(key, layout.key) and fits(item, layout.value)
                                               for key, item in value.items())
    if isinstance(layout, Maybe):
        return value is None or fits(value, layout.layout)
    if isinstance(layout, dict):
        return (isinstance(value, dict) and set(value) == set(layout)
                and all(fits(value[key], part) for key, part in layout.items()))
    kinds = layout if isinstance(layout, tuple) else (layout,)
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)
