"""hem's own checkpoint of a ``hem continual`` run: what the run needs to go on at the next
experience, as tensors and plain values only, so that it is read with ``weights_only=True`` and a
planted pickle builds nothing and runs nothing. Results folders are shared between people; a
checkpoint is input like any other.

It holds the experiences done, the recipe, hem's record (accuracy matrix, epoch history, seconds)
and class counts, the model's weights and frozen parameters, the optimiser's state, Avalanche's
clock, each stateful plugin's state (``hemcli.continual.plugin_state``) and the random states
(torch, CUDA on a CUDA run, numpy, python). ``restore`` puts them into a strategy built afresh from
the recipe: the task heads are made first by replaying the model adaptation of the experiences
done, then the weights go in. Anything that is not such a checkpoint is one ``HemError`` line.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from hemcli.continual.structure import ListOf, MapOf, Maybe, fits
from hemcli.errors import HemError

FORMAT = "hem-continual-checkpoint/1"
LAYOUT = {
    "format": str,
    "experiences_done": int,
    "recipe": dict,
    "record": {"matrix": ListOf(ListOf(Maybe(float))), "history": ListOf(MapOf(str, (int, float))),
               "seconds": ListOf(float)},
    "class_counts": torch.Tensor,
    "model": MapOf(str, torch.Tensor),
    "frozen": ListOf(str),
    "optimizer": {"state": dict, "param_groups": list},
    "clock": MapOf(str, int),
    "strategy": MapOf(str, dict),  # each plugin's own layout is checked as it is restored
    "rng": {"torch": torch.Tensor, "cuda": Maybe(torch.Tensor),
            "numpy": {"keys": torch.Tensor, "pos": int, "has_gauss": int, "cached_gaussian": float},
            "python": {"version": int, "internal": ListOf(int), "gauss_next": Maybe(float)}},
}
# What restoring a well-formed file that does not fit this run's model or strategy raises
_MISFIT = (RuntimeError, KeyError, ValueError, TypeError, IndexError, AssertionError, AttributeError)


def capture(strategy, record, counted) -> dict:
    """The state of ``strategy`` (with hem's ``record`` and ``counted`` loss hooks) between experiences."""
    from hemcli.continual import plugin_state

    model = strategy.model
    return {"format": FORMAT, "experiences_done": strategy.clock.train_exp_counter, "recipe": record.recipe,
            "record": {"matrix": record.matrix, "history": record.history, "seconds": record.seconds},
            "class_counts": counted.seen.clone(), "model": model.state_dict(),
            "frozen": plugin_state.frozen_names(model), "optimizer": strategy.optimizer.state_dict(),
            "clock": _counters(strategy.clock), "strategy": plugin_state.capture(strategy),
            "rng": _rng_state(torch.device(strategy.device))}


def write(path: Path, strategy, record, counted) -> None:
    from hemcli.fileio import write_atomic

    state = capture(strategy, record, counted)
    write_atomic(path, lambda handle: torch.save(state, handle), what="checkpoint")


def read(path: Path, recipe: dict) -> dict:
    """The checkpoint at ``path``, checked to be one of a run of ``recipe``; a HemError otherwise."""
    from hemcli.fileio import load_weights_only
    from hemcli.runs.condition import same_run

    try:
        state = load_weights_only(path)  # a regular file, tensors and plain containers only
    except OSError as err:
        raise _unreadable(path, err.strerror or str(err)) from None
    except Exception:  # empty, truncated, another format, a pickle that is not weights-only
        raise _unreadable(path, "not a hem continual checkpoint") from None
    if not (isinstance(state, dict) and state.get("format") == FORMAT and fits(state, LAYOUT)):
        raise _unreadable(path, "not a hem continual checkpoint")
    try:
        same = same_run(state["recipe"], recipe)
    except Exception:  # a recipe no hem run has
        raise _unreadable(path, "not a hem continual checkpoint") from None
    if not same:
        raise HemError(f"checkpoint {path} was made with another recipe; "
                       "resume with the same options or pass --overwrite to start again")
    return state


def restore(path: Path, state: dict, strategy, record, counted, train_stream, recipe: dict) -> int:
    """Put ``state`` (from ``read``) into a strategy just built from ``recipe``; returns the index of
    the experience to train next."""
    try:
        _restore(state, strategy, record, counted, train_stream, recipe)
    except _MISFIT:
        raise _unreadable(path, "not a hem continual checkpoint (it does not fit this model and strategy)") from None
    return state["experiences_done"]


def _restore(state: dict, strategy, record, counted, train_stream, recipe: dict) -> None:
    from avalanche.models.dynamic_modules import avalanche_model_adaptation

    from hemcli.continual import plugin_state
    from hemcli.engine.optim import make_optimizer

    done, saved = state["experiences_done"], state["record"]
    if not (1 <= done < len(train_stream) and len(saved["matrix"]) == len(saved["seconds"]) == done):
        raise ValueError("experiences done out of range")
    model = strategy.model
    model.train()  # as Avalanche adapts a model: in training mode, which records the task labels seen
    for experience in train_stream[:done]:  # the heads of the tasks seen, as their experiences added them
        avalanche_model_adaptation(model, experience)
    model.to(strategy.device)
    model.load_state_dict(state["model"])
    plugin_state.set_frozen(model, state["frozen"])
    strategy.optimizer = make_optimizer(recipe, model.parameters())
    strategy.optimizer.load_state_dict(state["optimizer"])
    # Avalanche tracks the parameters it has put in the optimiser; without this it would take the
    # optimiser for a new one at the next experience and reset its state.
    strategy.optimized_param_id = dict(model.named_parameters())
    if state["class_counts"].shape != counted.seen.shape:
        raise ValueError("class counts of another benchmark")
    counted.seen = state["class_counts"].to(torch.int64).clone()
    record.matrix, record.history, record.seconds = saved["matrix"], saved["history"], saved["seconds"]
    clock = strategy.clock
    if set(state["clock"]) != set(_counters(clock)) or state["clock"].get("train_exp_counter") != done:
        raise ValueError("another clock")
    for name, value in state["clock"].items():
        setattr(clock, name, value)
    plugin_state.restore(strategy, state["strategy"])
    _set_rng_state(state["rng"], torch.device(strategy.device))  # last: rebuilding the heads drew from it


def _counters(clock) -> dict:
    return {name: value for name, value in vars(clock).items() if type(value) is int}


def _rng_state(device: torch.device) -> dict:
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                      "cached_gaussian": float(cached)},
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next}}


def _set_rng_state(state: dict, device: torch.device) -> None:
    numpy_state = state["numpy"]
    keys = numpy_state["keys"]
    if keys.dtype != torch.int64 or not bool(((keys >= 0) & (keys < 2 ** 32)).all()):
        raise ValueError("numpy random state out of range")
    python = state["python"]
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and device.type == "cuda":  # a run resumed on the CPU draws anew there
        torch.cuda.set_rng_state(state["cuda"], device)
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), numpy_state["pos"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))


def _unreadable(path: Path, why: str) -> HemError:
    return HemError(f"cannot read checkpoint {path}: {why}; pass --overwrite to start again")
