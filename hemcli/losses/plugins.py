"""Your own loss: ``--loss package.module:NAME``, or an entry point of group ``hemcli.losses``.

NAME is a function ``loss(logits, targets, **params) -> 0-dim tensor`` or an ``nn.Module`` subclass
built with ``**params`` and called as ``module(logits, targets)``. ``find_plugin`` makes it a
``LossInfo``: its parameters are the keyword parameters with a default (a class's ``__init__``'s),
and a parameter named ``class_counts``, ``num_classes`` or ``ignore_index`` is filled in by hem
(``class_counts`` as for ``la`` and ``hem``: a tuple of floats, one per class).
The registry (``LossRegistry``) calls it on a name's first lookup, so each process that reads a
recipe naming a plug-in (``hem <task>``, the planning of ``hem sweep``, each sweep worker) registers it.

Every way a plug-in can be bad is a one-line HemError before anything is written: ``probe`` calls
the built loss once on a small random batch when the task checks its loss (``check_loss``).
"""
from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
from typing import Callable

import torch
from torch import nn

from hemcli.errors import HemError, shown
from hemcli.losses.functional import as_float
from hemcli.losses.modules import _LossModule
from hemcli.losses.info import LossInfo, require_counts as _require_counts

ENTRY_POINT_GROUP = "hemcli.losses"
# Parameters hem passes itself, never a recipe. ignore_index: a plug-in never sees an ignored pixel,
# but one written for them (torch.nn.CrossEntropyLoss) gets the task's, so it cannot clash.
FILLED_IN = ("class_counts", "num_classes", "ignore_index")
PROBE_BATCH = 4
# A recipe records every parameter, so a default must be a value a recipe can hold.
_RECIPE_VALUES = (type(None), bool, int, float, str)


def is_spec(name: str) -> bool:
    """``package.module:NAME`` names an object; a bare name may be an entry point."""
    return ":" in name


def find_plugin(name: str) -> LossInfo | None:
    """The plug-in loss ``name`` (not registered here), None when no plug-in has that name; a bad
    plug-in is a HemError naming what is wrong."""
    if is_spec(name):
        return plugin_info(name, load_object(name, name), source=name)
    found = [point for point in loss_entry_points() if point.name == name]
    if not found:
        return None
    dists = sorted({dist_name(point) for point in found})
    if len(dists) > 1:
        raise HemError(f"loss {name!r} is an entry point of several distributions ({', '.join(dists)}); "
                       "uninstall all but one")
    point = found[0]
    return plugin_info(name, load_object(f"{point.module}:{point.attr}", name), source=f"entry point {dists[0]}")


def loss_entry_points() -> list:
    """The installed entry points of group ``hemcli.losses`` (read from the distributions on sys.path)."""
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def dist_name(point) -> str:
    dist = getattr(point, "dist", None)
    return dist.name if dist is not None else point.value


# ---------------------------------------------------------------- from a spec to an object


def load_object(spec: str, name: str):
    """The object ``package.module:ATTR[.ATTR...]`` names."""
    module_name, _, attr = spec.partition(":")
    if not all(part.isidentifier() for part in [*module_name.split("."), *attr.split(".")]):
        raise HemError(f"loss {name!r}: a plug-in loss is written package.module:NAME, got {shown(spec)}")
    module = _import(module_name, name)
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            public = [key for key in dir(target) if not key.startswith("_")]
            close = difflib.get_close_matches(part, public, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise HemError(f"loss {name!r}: {getattr(target, '__name__', module_name)} has no attribute "
                           f"{part!r}{hint}")
        target = getattr(target, part)
    return target


def _import(module_name: str, name: str):
    try:
        return _import_here_too(module_name)
    except ModuleNotFoundError as err:
        if _is_missing(module_name, err):
            raise HemError(f"loss {name!r}: no module named {err.name!r} on sys.path or in the working "
                           f"folder {os.getcwd()}") from None
        raise HemError(f"loss {name!r}: importing {module_name} raised ModuleNotFoundError: {err}") from None
    except Exception as err:  # the module's own code failed: name it, not hem
        raise HemError(f"loss {name!r}: importing {module_name} raised {type(err).__name__}: {err}") from None


def _import_here_too(module_name: str):
    """Import ``module_name``; when it is not found, retry with the working folder on sys.path.

    The ``hem`` console script's ``sys.path[0]`` is the venv's bin folder, not the working folder
    (as ``python -m`` would put there), so ``--loss mymod:f`` beside the recipe would not import;
    uvicorn's app dir does the same. Appended, so that it never shadows an installed package.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        here = os.getcwd()
        if not _is_missing(module_name, err) or "" in sys.path or here in sys.path:
            raise
        sys.path.append(here)
        importlib.invalidate_caches()  # the path finders may have listed the folder before the file was written
        return importlib.import_module(module_name)


def _is_missing(module_name: str, err: ModuleNotFoundError) -> bool:
    """The module itself (or its package) was not found, rather than something it imports."""
    return bool(err.name) and (module_name == err.name or module_name.startswith(err.name + "."))


# ---------------------------------------------------------------- from an object to a LossInfo


def plugin_info(name: str, obj, source: str) -> LossInfo:
    """``obj`` (a loss function or nn.Module subclass) as a registry record."""
    where = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
    is_class = isinstance(obj, type)
    if is_class and not issubclass(obj, nn.Module):
        raise HemError(f"loss {name!r}: {where} is a class but not an nn.Module subclass")
    if not callable(obj):
        raise HemError(f"loss {name!r}: {source} is {type(obj).__name__} {shown(obj)}, not a function "
                       "or an nn.Module subclass")
    defaults, filled_in = _parameters(name, obj, is_class)
    doc = (inspect.getdoc(obj) or "").strip().splitlines() if is_class or inspect.isfunction(obj) else []
    description = doc[0] if doc else f"plug-in {'nn.Module' if is_class else 'function'} {where}"
    return LossInfo(name, _builder(name, obj, is_class, filled_in), description, defaults,
                    needs_class_counts="class_counts" in filled_in, source=source)


def _parameters(name: str, obj, is_class: bool) -> tuple[dict, tuple[str, ...]]:
    """(recipe parameters -> defaults, the FILLED_IN parameters it takes), from the signature."""
    try:
        signature = inspect.signature(obj)  # a class: its __init__'s, without self
    except (TypeError, ValueError):  # a builtin without one: called with no parameters
        return {}, ()
    parameters = list(signature.parameters.values())
    if not is_class:  # the first two are logits and targets
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) < 2 and not any(p.kind == p.VAR_POSITIONAL for p in parameters):
            raise HemError(f"loss {name!r}: it takes {len(positional)} positional parameter(s); hem calls "
                           "loss(logits, targets, **params)")
        parameters = [p for p in parameters if p not in positional[:2]]
    defaults, filled_in = {}, []
    for p in parameters:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in FILLED_IN:
            filled_in.append(p.name)
        elif p.default is p.empty:
            raise HemError(f"loss {name!r}: parameter {p.name!r} has no default; hem passes only the "
                           "parameters a recipe sets (loss.params), so give it one")
        elif not isinstance(p.default, _RECIPE_VALUES):
            raise HemError(f"loss {name!r}: parameter {p.name!r} defaults to a {type(p.default).__name__}; "
                           "a recipe holds numbers, strings, true/false and null")
        else:
            defaults[p.name] = p.default
    return defaults, tuple(filled_in)


def _builder(name: str, obj, is_class: bool, filled_in: tuple[str, ...]) -> Callable[..., nn.Module]:
    def build(*, num_classes, class_counts, ignore_index, **params):
        known = {"num_classes": num_classes, "ignore_index": ignore_index}
        if "class_counts" in filled_in:
            known["class_counts"] = _require_counts(name, class_counts)
        given = {**params, **{key: known[key] for key in filled_in}}
        if not is_class:
            return PluginLoss(name, obj, given, ignore_index)
        try:
            module = obj(**given)
        except Exception as err:
            raise HemError(f"loss {name!r}: building {obj.__name__}({_spelled(params)}) raised "
                           f"{type(err).__name__}: {err}") from None
        return PluginLoss(name, module, {}, ignore_index)
    return build


def _spelled(params: dict) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in params.items())


# ---------------------------------------------------------------- calling it as hem calls every loss


class PluginLoss(_LossModule):
    """A plug-in called as every registry loss is: ``loss(logits, targets)`` -> 0-dim tensor.

    The plug-in sees classification's (N, C) logits and (N,) targets as they are. Per-pixel logits
    (N, C, d1, ...) become (M, C) rows of the M pixels whose target is not ``ignore_index`` (a loss
    written for classification knows nothing of ignored pixels); a batch without any gives exactly 0
    with a zero gradient, as the built-in losses do. Half/bfloat16 logits arrive as float32.
    """

    def __init__(self, name: str, loss, params: dict, ignore_index: int = -100):
        self.loss_name = name
        super().__init__(ignore_index)
        self.plugin = loss  # an nn.Module becomes a submodule: its buffers follow .to(device)
        self.params = dict(params)

    def loss(self, logits, targets):
        try:
            value = self.call_plugin(logits, targets)
        except HemError:
            raise
        except Exception as err:  # the plug-in's own failure, not hem's: one line naming it (exit 1)
            from hemcli.errors import RunFailed

            text = " ".join(str(err).split())[:200]
            raise RunFailed(f"loss {self.loss_name!r} raised {type(err).__name__} on a batch of "
                            f"{'x'.join(map(str, logits.shape))} logits: {text}") from None
        problem = value_problem(value)
        if problem:
            raise HemError(f"loss {self.loss_name!r} returned {problem}")
        return value

    def call_plugin(self, logits, targets):
        """The plug-in's own value, unchecked, for hem's logits and targets."""
        logits = as_float(logits)
        if logits.dim() > 2:
            logits = logits.movedim(1, -1).reshape(-1, logits.shape[1])  # (N, d1, ..., C) -> (M, C)
            targets = targets.reshape(-1)
            valid = targets != self.ignore_index
            logits, targets = logits[valid], targets[valid]
            if targets.numel() == 0:
                return logits.sum()  # an empty sum: exactly 0, with a zero gradient
        return self.plugin(logits, targets, **self.params)

    def extra_repr(self) -> str:
        return f"{self.loss_name}, {_spelled(self.params)}, ignore_index={self.ignore_index}"


def value_problem(value) -> str | None:
    """What makes ``value`` no loss value (checked on every call: no device sync), or None."""
    if not isinstance(value, torch.Tensor):
        return f"{type(value).__name__} {shown(value)}, not a tensor"
    if value.dim() != 0:
        return f"a tensor of shape {tuple(value.shape)}, not a scalar (0-dim tensor; take the mean)"
    return None


def probe(loss: nn.Module, num_classes: int) -> None:
    """Call a built plug-in once on a random (PROBE_BATCH, num_classes) batch and backpropagate: a
    plug-in that raises, returns no finite scalar or does not reach the logits fails now, before a
    folder is made, rather than after the data has loaded."""
    name = loss.loss_name
    batch = f"a probe batch of {PROBE_BATCH}x{num_classes} logits"
    logits = torch.randn(PROBE_BATCH, num_classes, generator=torch.Generator().manual_seed(0), requires_grad=True)
    targets = torch.arange(PROBE_BATCH) % num_classes
    calling = f"loss {name!r}: calling it on {batch}"
    with torch.enable_grad():
        try:
            value = loss.call_plugin(logits, targets)
        except Exception as err:
            raise HemError(f"{calling} raised {type(err).__name__}: {err}") from None
        problem = value_problem(value)
        if problem:
            raise HemError(f"{calling} returned {problem}")
        if not bool(torch.isfinite(value.detach())):
            raise HemError(f"{calling} returned {value.item()}; a loss must be finite")
        if not value.requires_grad:
            raise HemError(f"loss {name!r}: its value on {batch} does not depend on the logits "
                           "(no gradient reaches them; was it computed from .detach(), .item() or numpy?)")
        try:
            value.backward()
        except Exception as err:
            raise HemError(f"loss {name!r}: backward from its value on {batch} raised "
                           f"{type(err).__name__}: {err}") from None
    if logits.grad is None:
        raise HemError(f"loss {name!r}: no gradient from its value on {batch} reaches the logits")
