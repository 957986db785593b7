"""Avalanche's continual-learning strategies by name, each with its parameters, their types and defaults.

``strategy.params`` of a recipe is checked here before anything runs: an unknown parameter or one of
the wrong type is a one-line error naming the valid ones. The defaults are Avalanche's where it has
one; the recipes in ``recipes/continual/`` set ContinualAI's continual-learning-baselines values.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Callable, Mapping

from hemcli.errors import HemError, shown, unknown_name


@dataclass(frozen=True)
class Param:
    default: object
    kind: str  # "float", "int", "float or list", "choice"
    help: str
    choices: tuple = ()
    minimum: float | None = 0


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    description: str
    params: Mapping[str, Param] = field(default_factory=dict)
    # builder(common: dict of Avalanche's strategy arguments, params: dict) -> strategy
    builder: Callable = None


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_param(strategy: str, key: str, spec: Param, value):
    where = f"strategy {strategy!r}: parameter {key!r}"
    if spec.kind == "choice":
        if value not in spec.choices:
            raise HemError(f"{where}: unknown value {shown(value)}; valid choices: {', '.join(spec.choices)}")
        return value
    items = value if spec.kind == "float or list" and isinstance(value, list) else [value]
    is_int = spec.kind == "int"
    for item in items:
        if not (_number(item) and (not is_int or isinstance(item, int))):
            wanted = {"int": "an integer", "float": "a number", "float or list": "a number or a list of numbers"}
            raise HemError(f"{where} must be {wanted[spec.kind]}, got {shown(value)}")
        if spec.minimum is not None and item < spec.minimum:
            raise HemError(f"{where} must be >= {spec.minimum}, got {item!r}")
    if spec.kind == "float or list" and isinstance(value, list) and not value:
        raise HemError(f"{where} must be a number or a non-empty list of numbers, got []")
    return value


def strategy_params(name: str, given: Mapping[str, object]) -> dict:
    """The strategy's parameters: its defaults updated by ``given``, every value checked."""
    info = strategy_info(name)
    for key in given:
        if key not in info.params:
            valid = ", ".join(info.params) or "none"
            raise HemError(f"strategy {name!r} has no parameter {key!r}; valid parameters: {valid}")
    return {key: _check_param(name, key, spec, given.get(key, spec.default)) for key, spec in info.params.items()}


def strategy_info(name: str) -> StrategyInfo:
    if name not in STRATEGIES:
        raise unknown_name("strategy", name, STRATEGIES)
    return STRATEGIES[name]


def _naive(common, params):
    from avalanche.training.supervised import Naive
    return Naive(**common)


def _replay(common, params):
    # Naive + ReplayPlugin with a class-balanced buffer, as continual-learning-baselines' replay runs
    # (Avalanche's Replay strategy fills its buffer per experience instead).
    from avalanche.training.plugins import ReplayPlugin
    from avalanche.training.storage_policy import ClassBalancedBuffer
    from avalanche.training.supervised import Naive

    size = params["mem_size"]
    buffer = ClassBalancedBuffer(max_size=size, adaptive_size=True)
    plugins = [*common.pop("plugins"), ReplayPlugin(mem_size=size, storage_policy=buffer)]
    return Naive(**common, plugins=plugins)


def _si(common, params):
    from avalanche.training.supervised import SynapticIntelligence

    copy_si_snapshots()
    return SynapticIntelligence(**common, si_lambda=params["si_lambda"], eps=params["eps"])


def copy_si_snapshots() -> None:
    """Make Avalanche 0.6's Synaptic Intelligence snapshot the weights by value.

    Its ``extract_weights`` / ``extract_grad`` store ``param.detach().cpu().flatten()``. On a GPU
    ``.cpu()`` copies; on the CPU it returns the parameter itself and ``flatten()`` a view of it, so
    the "old" and "new" weights of every step are the live parameters: each path integral, each
    importance and the penalty stay exactly 0, and SI trains as naive fine-tuning does. Its plugin
    calls both through the class name, so the fix replaces them on the class (idempotent)."""
    import torch
    from avalanche.training.plugins import SynapticIntelligencePlugin as SI

    if getattr(SI, "_hem_copies", False):
        return

    @torch.no_grad()
    def extract_weights(model, target, excluded_parameters):
        for name, param in SI.allowed_parameters(model, excluded_parameters):
            target[name].data = param.detach().flatten().to("cpu", copy=True)

    @torch.no_grad()
    def extract_grad(model, target, excluded_parameters):
        for name, param in SI.allowed_parameters(model, excluded_parameters):
            target[name].data = param.grad.detach().flatten().to("cpu", copy=True)

    SI.extract_weights, SI.extract_grad = staticmethod(extract_weights), staticmethod(extract_grad)
    SI._hem_copies = True


def _ewc(common, params):
    from avalanche.training.supervised import EWC
    decay = params["decay_factor"] if params["mode"] == "online" else None
    return EWC(**common, ewc_lambda=params["ewc_lambda"], mode=params["mode"], decay_factor=decay)


def _lwf(common, params):
    from avalanche.training.supervised import LwF
    return LwF(**common, alpha=params["alpha"], temperature=params["temperature"])


def _lfl(common, params):
    from avalanche.training.supervised import LFL
    return LFL(**common, lambda_e=params["lambda_e"])


STRATEGIES: dict[str, StrategyInfo] = {info.name: info for info in (
    StrategyInfo("naive", "fine-tune on each experience in turn (no protection against forgetting)", {}, _naive),
    StrategyInfo("replay", "rehearse a class-balanced buffer of earlier samples (ReplayPlugin)",
                 {"mem_size": Param(2000, "int", "samples kept in the buffer", minimum=1)}, _replay),
    StrategyInfo("si", "Synaptic Intelligence (Zenke et al. 2017)",
                 {"si_lambda": Param(1.0, "float or list", "penalty weight (one, or one per experience)"),
                  "eps": Param(1e-7, "float", "damping of the importance")}, _si),
    StrategyInfo("ewc", "Elastic Weight Consolidation (Kirkpatrick et al. 2017)",
                 {"ewc_lambda": Param(1.0, "float", "penalty weight"),
                  "mode": Param("separate", "choice", "one penalty per experience, or one online",
                                ("separate", "online")),
                  "decay_factor": Param(1.0, "float", "online mode: importance decay", minimum=0)}, _ewc),
    StrategyInfo("lwf", "Learning without Forgetting (Li & Hoiem 2016)",
                 {"alpha": Param(1.0, "float or list", "distillation weight (one, or one per experience)"),
                  "temperature": Param(2.0, "float", "distillation temperature", minimum=1e-12)}, _lwf),
    StrategyInfo("lfl", "Less-Forgetful Learning (Jung et al. 2016): keep the features close",
                 {"lambda_e": Param(1e-4, "float or list", "feature penalty weight (one, or one per experience)")},
                 _lfl),
)}
