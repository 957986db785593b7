"""A network trained elsewhere, for ``hem evaluate --weights FILE (--arch A | --model M)``.

``read_state_dict`` reads a ``torch.save(model.state_dict())`` file weights-only (a pickled network
or a planted pickle builds nothing and runs nothing) and refuses what is not a state_dict, saying
what the file holds instead. ``network_from_factory`` imports the user's ``package.module:factory``
(from the working folder too, as a plug-in loss is) and calls it. ``load_fitting`` loads a state_dict
into a network only when every key and shape fits, and otherwise names the keys and shapes that do
not, and a class count that differs from the dataset's. Every problem is one HemError line.
"""
from __future__ import annotations

import hashlib
import inspect
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from hemcli.errors import HemError, shown

if TYPE_CHECKING:
    from torch import nn

SHOWN_KEYS = 3  # keys named in a message; the rest are counted
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def sha256_of(path: Path) -> str:
    """The SHA-256 of the file's bytes (what a result records to tell two weight files apart)."""
    from hemcli.fileio import open_regular

    digest = hashlib.sha256()
    with open_regular(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path) -> dict:
    """The state_dict saved at ``path``: a mapping of parameter names to tensors; a HemError for a
    missing file, one torch.save did not write, a pickled object, or anything but a state_dict."""
    import torch

    from hemcli.fileio import load_weights_only

    try:
        state = load_weights_only(path)
    except FileNotFoundError:
        raise HemError(f"weights file not found: {path}") from None
    except OSError as err:
        raise HemError(f"cannot read weights {path}: {err.strerror or err}") from None
    except Exception as err:  # weights-only refused it, or it is no torch.save file at all
        found = _GLOBAL.search(str(err))
        if found:
            raise HemError(f"weights {path} hold a pickled {found.group(1)}, not a state_dict; save "
                           "model.state_dict() instead (hem loads weights only, so no pickle runs)") from None
        raise HemError(f"cannot read weights {path}: not a file torch.save wrote") from None
    if isinstance(state, dict) and state and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in state.items()):
        return state
    raise HemError(f"weights {path} hold {_what(state)}, not a state_dict (parameter names to tensors); "
                   "save model.state_dict()")


def _what(obj: object) -> str:
    """What a loaded object is, in words, with a hint where it is a checkpoint holding a state_dict."""
    import torch

    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {_shape(obj.shape)}"
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}"
    if not obj:
        return "an empty mapping"
    if isinstance(obj.get("format"), str) and obj["format"].startswith("hem-checkpoint"):
        return "a hem checkpoint (measure its run with hem evaluate RESULT.json)"
    inner = [key for key, value in obj.items() if isinstance(value, dict) and value
             and all(isinstance(v, torch.Tensor) for v in value.values())]
    if inner:
        return f"a checkpoint with a state_dict under {inner[0]!r} (save that one)"
    odd = next(key for key, value in obj.items() if not isinstance(value, torch.Tensor))
    return f"a mapping whose entry {shown(odd)} is a {type(obj[odd]).__name__}"


def _shape(shape) -> str:
    return "[" + ", ".join(str(side) for side in shape) + "]"


def _few(keys: list[str]) -> str:
    named = ", ".join(keys[:SHOWN_KEYS])
    return named + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


def misfit(model: "nn.Module", state: dict) -> str | None:
    """Why ``state`` does not load into ``model`` (missing or unexpected keys, or the first key whose
    shape differs, with both shapes), or None when every key and shape fits."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        parts = [f"missing keys {_few(missing)}" if missing else "",
                 f"unexpected keys {_few(unexpected)}" if unexpected else ""]
        wrapped = unexpected and all(key.startswith("module.") for key in state)
        hint = " (saved from a DataParallel/DDP wrapper: save model.module.state_dict())" if wrapped else ""
        return "; ".join(part for part in parts if part) + hint
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            return f"{key} has shape {_shape(state[key].shape)} in the file and {_shape(tensor.shape)} in the network"
    return None


def load_fitting(model: "nn.Module", state: dict, where: Path, name: str, dataset: str, num_classes: int,
                 rebuild: Callable[[int], "nn.Module"] | None = None) -> "nn.Module":
    """``model`` with ``state`` loaded; a HemError when it does not fit. ``rebuild(k)`` builds the
    same network for ``k`` classes: where the file fits one of those, the message says that the
    weights are of a k-class network rather than naming a shape (``dataset`` has ``num_classes``)."""
    reason = misfit(model, state)
    if reason is None:
        model.load_state_dict(state)
        return model
    if rebuild is not None:
        for classes in _other_class_counts(model, state, num_classes):
            if misfit(rebuild(classes), state) is None:
                raise HemError(f"weights {where} are of a {classes}-class {name}; dataset {dataset} has "
                               f"{num_classes} classes")
    raise HemError(f"weights {where} do not fit {name}: {reason}")


def _other_class_counts(model: "nn.Module", state: dict, num_classes: int) -> list[int]:
    """The sizes the file gives where the network has ``num_classes`` rows (its last layer, sized for
    the dataset) and the file another: the class count the weights were trained for, if that is all."""
    expected = model.state_dict()
    return sorted({int(state[key].shape[0]) for key, tensor in expected.items()
                   if key in state and state[key].dim() >= 1 and tensor.dim() >= 1
                   and tensor.shape[0] == num_classes and state[key].shape[0] != num_classes})


def network_from_factory(spec: str, num_classes: int) -> "nn.Module":
    """The network ``package.module:factory`` returns, called with ``num_classes=`` where it takes it."""
    from torch import nn

    factory = load_factory(spec)
    try:
        takes = "num_classes" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        takes = False
    try:
        model = factory(num_classes=num_classes) if takes else factory()
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise HemError(f"--model {spec}: calling it raised {type(err).__name__}: {first}") from None
    if not isinstance(model, nn.Module):
        raise HemError(f"--model {spec} returned an object of type {type(model).__name__}, not an nn.Module")
    return model


def load_factory(spec: str) -> Callable:
    """The callable ``package.module:NAME`` names (the module found in the working folder too)."""
    from hemcli.losses.plugins import _import_here_too, _is_missing  # one rule for user code of both kinds

    module_name, sep, attr = spec.partition(":")
    if not sep or not all(part.isidentifier() for part in [*module_name.split("."), *attr.split(".")]):
        raise HemError(f"--model is written package.module:factory, got {shown(spec)}")
    try:
        target = _import_here_too(module_name)
    except ModuleNotFoundError as err:
        if _is_missing(module_name, err):
            raise HemError(f"--model {spec}: no module named {err.name!r} on sys.path or in the working "
                           "folder") from None
        raise HemError(f"--model {spec}: importing {module_name} raised ModuleNotFoundError: {err}") from None
    except Exception as err:  # the module's own code failed: name it
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise HemError(f"--model {spec}: importing {module_name} raised {type(err).__name__}: {first}") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise HemError(f"--model {spec}: {getattr(target, '__name__', module_name)} has no attribute {part!r}")
        target = getattr(target, part)
    if not callable(target):
        raise HemError(f"--model {spec} is not callable (an object of type {type(target).__name__}); it names a "
                       "function returning an nn.Module")
    return target
