"""What a run *is*, apart from its seed: its condition, the id of that, and a folder name a person can read.

A condition is the resolved recipe without the seed and without the keys that say where or how to
run rather than what is trained and measured (``RUN_KEYS``). Two runs of one condition differ only in
seed; ``hem report`` averages over them, and the result path is unique per (condition, seed):

    <out>/<task>/<dataset>/<arch>/<loss>/<label>--<id>/seed<N>.json

``label`` lists the keys that differ from the recipe the run started from (the recipe file, or the
task's defaults) and the loss parameters that differ from the loss's defaults, e.g. ``M=500,lr=0.01``;
``base`` when none does. ``id`` is a hash of the whole condition, so two conditions never share a
folder, however their labels are shortened. No torch here: ``hem report`` uses this module too.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Iterable, Mapping

# Where and how to run, not what: the data folder and whether to download, the device, kernel and
# memory-layout choices that do not change what is learned, and which evaluations to run after
# training (a run with more evaluations is the same trained condition). The seed is kept apart.
RUN_KEYS = ("seed", "device", "dataset.root", "dataset.download", "dataset.workers", "deterministic",
            "channels_last", "eval", "verbose", "train.compile")
# How the evaluations measure (sample counts, attack strength, scores): a run measured again with
# other settings by `hem evaluate` / `hem attack` is still the same trained condition. Where a run is
# logged (hemcli.loggers): a run logged or not is the same condition.
RUN_PREFIXES = ("evaluation.", "log.")
# Keys added after results existed, left out of the condition while at these defaults, so that a
# run made before they existed and the same run made now share one id (and a sweep skips it).
LATER_DEFAULTS = {"dataset.limit": None, "model.pretrained": False, "schedule.warmup_epochs": 0,
                  "schedule.warmup_start": 0.01, "sampling": "shuffle", "train.skip_zero_loss": False}
# Keys that already name a folder of the result path, so the label need not repeat them.
PATH_KEYS = ("task", "dataset.name", "model.arch", "loss.name", "benchmark.name", "strategy.name")
LOSS_PARAMS = "loss.params."
ID_LENGTH = 10
LABEL_LIMIT = 60
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=,-]")


def leaves(tree: Mapping, prefix: str = "") -> dict[str, object]:
    """Nested mapping -> {dotted key: value}, down to every leaf (``loss.params.M`` included)."""
    flat = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            flat.update(leaves(value, key + "."))
        else:
            flat[key] = value
    return flat


def condition_of(recipe: Mapping) -> dict[str, object]:
    """The recipe's condition: its leaves without ``RUN_KEYS``, ``RUN_PREFIXES`` and the
    ``LATER_DEFAULTS`` at their defaults, in sorted key order."""
    flat = leaves(recipe)
    return {key: flat[key] for key in sorted(flat)
            if key not in RUN_KEYS and not key.startswith(RUN_PREFIXES)
            and not (key in LATER_DEFAULTS and flat[key] == LATER_DEFAULTS[key])}


def canonical(value: object) -> object:
    """1000.0 and 1000 are one condition (``M=1000`` may be typed either way); True stays True."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 63:
        return int(value)
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    if isinstance(value, Mapping):
        return {key: canonical(item) for key, item in value.items()}
    return value


def condition_id(condition: Mapping[str, object]) -> str:
    """A short hash of the condition: equal conditions, equal ids, whatever the key order."""
    text = json.dumps(canonical(dict(condition)), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_LENGTH]


def short_names(keys: Iterable[str]) -> dict[str, str]:
    """Each dotted key by its shortest suffix that no other key ends with: ``optim.lr`` -> ``lr``."""
    keys = list(dict.fromkeys(keys))
    names = {}
    for key in keys:
        parts = key.split(".")
        for size in range(1, len(parts) + 1):
            suffix = ".".join(parts[-size:])
            if not any(other != key and (other == suffix or other.endswith("." + suffix)) for other in keys):
                break
        names[key] = suffix
    return names


def spell(value: object) -> str:
    """A value as a label shows it: 0.01, 1e-05, true, null, 30+60 for a list."""
    value = canonical(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "+".join(spell(item) for item in value) or "none"
    if isinstance(value, Mapping):
        return "+".join(f"{key}:{spell(item)}" for key, item in value.items()) or "none"
    return str(value)


def differences(condition: Mapping[str, object], base: Mapping[str, object],
                loss_defaults: Mapping[str, object]) -> dict[str, object]:
    """The keys a label shows: those that differ from ``base``, and the loss parameters that differ
    from the loss's own defaults; never the keys already in the path."""
    shown = {}
    for key, value in condition.items():
        if key in PATH_KEYS:
            continue
        if key.startswith(LOSS_PARAMS):
            reference = loss_defaults.get(key[len(LOSS_PARAMS):], _MISSING)
        else:
            reference = base.get(key, _MISSING)
        if reference is _MISSING or canonical(reference) != canonical(value):
            shown[key] = value
    return shown


_MISSING = object()


def label(shown: Mapping[str, object], universe: Iterable[str]) -> str:
    """``M=500,lr=0.01`` (names short but unambiguous among ``universe``); ``base`` when empty."""
    if not shown:
        return "base"
    names = short_names([*universe, *shown])
    parts = [_UNSAFE.sub("_", f"{names[key]}={spell(value)}") for key, value in shown.items()]
    text = ",".join(parts)
    if len(text) <= LABEL_LIMIT:
        return text
    kept = []
    for part in parts:  # whole keys only, then a mark that more differ (the id tells them apart)
        if len(",".join([*kept, part])) > LABEL_LIMIT - len(",etc"):
            break
        kept.append(part)
    return ",".join([*kept, "etc"])


def same_run(saved: dict, recipe: dict) -> bool:
    """The same condition and seed: a run may resume on another device, data folder or machine."""
    return canonical(condition_of(saved)) == canonical(condition_of(recipe)) and saved.get("seed") == recipe.get("seed")
