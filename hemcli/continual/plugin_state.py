"""What the Avalanche 0.6 plugins of hem's strategies keep from one experience to the next, taken out
as tensors and plain values (``capture``) and put back into a freshly built strategy (``restore``).

* EWC (``EWCPlugin``): each past experience's parameter values and importances (``ParamData``).
* SI (``SynapticIntelligencePlugin``): ``ewc_data`` (values at the loss minimum, importances) and
  ``syn_data`` (old/new values, gradients, trajectories), per parameter, flattened, on the CPU.
* LwF (``LwFPlugin.lwf``): the model as the last experience left it, the experiences counted (alpha
  may be one per experience), and the classes each task has shown so far.
* LFL (``LFLPlugin``): the frozen copy of the model as the last experience left it.
* Replay (``ReplayPlugin`` with a ``ClassBalancedBuffer``): per class label, in the buffer's order,
  the samples (images, labels, task labels) and their reservoir weights; the buffer is rebuilt from
  them with the same tensor dataset hem's benchmarks use, so it hands out the same samples.

A previous model is kept as its weights, the names of its frozen parameters and its train/eval mode,
and is rebuilt as a copy of the strategy's model (whose heads ``restore`` expects to exist already).
"""
from __future__ import annotations

import copy
from collections import defaultdict

import torch

from hemcli.continual.structure import ListOf, MapOf, Maybe, fits

PARAMS = MapOf(str, {"name": str, "data": torch.Tensor})  # a dict of Avalanche's ParamData
MODULE = {"weights": MapOf(str, torch.Tensor), "frozen": ListOf(str), "training": bool}
BUFFER_GROUP = {"label": int, "max_size": int, "x": torch.Tensor, "y": torch.Tensor, "task": torch.Tensor,
                "weights": torch.Tensor}
LAYOUTS = {
    "ewc": {"saved_params": MapOf(int, PARAMS), "importances": MapOf(int, PARAMS)},
    "si": {"ewc_data": ListOf(PARAMS), "syn_data": MapOf(str, PARAMS)},
    "lwf": {"expcount": int, "prev_classes": MapOf(int, ListOf(int)), "prev_model": Maybe(MODULE)},
    "lfl": {"prev_model": Maybe(MODULE)},
    "replay": {"max_size": int, "seen_classes": ListOf(int), "groups": ListOf(BUFFER_GROUP)},
}


def _plugin_classes() -> dict:
    from avalanche.training.plugins import EWCPlugin, LFLPlugin, LwFPlugin, ReplayPlugin, SynapticIntelligencePlugin

    return {"ewc": EWCPlugin, "si": SynapticIntelligencePlugin, "lwf": LwFPlugin, "lfl": LFLPlugin,
            "replay": ReplayPlugin}


def stateful_plugins(strategy) -> dict:
    """The strategy's plugins that keep something between experiences, by kind."""
    classes = _plugin_classes()
    return {kind: plugin for plugin in strategy.plugins for kind, cls in classes.items() if isinstance(plugin, cls)}


def capture(strategy) -> dict:
    return {kind: _CAPTURE[kind](plugin) for kind, plugin in stateful_plugins(strategy).items()}


def restore(strategy, states: dict) -> None:
    """Each plugin's state put back; ValueError when ``states`` is not this strategy's."""
    plugins = stateful_plugins(strategy)
    if set(states) != set(plugins):
        raise ValueError(f"state of plugins {sorted(states)}, the strategy has {sorted(plugins)}")
    for kind, plugin in plugins.items():
        if not fits(states[kind], LAYOUTS[kind]):
            raise ValueError(f"malformed {kind} state")
        _RESTORE[kind](plugin, states[kind], strategy)


# ---------------------------------------------------------------- parameters and models


def frozen_names(module) -> list[str]:
    return [name for name, param in module.named_parameters() if not param.requires_grad]


def set_frozen(module, names: list[str]) -> None:
    params = dict(module.named_parameters())
    if not set(names) <= set(params):
        raise ValueError("frozen parameters the model does not have")
    for name, param in params.items():
        param.requires_grad_(name not in names)


def module_state(module) -> dict:
    return {"weights": module.state_dict(), "frozen": frozen_names(module), "training": module.training}


def _module_like(state: dict | None, model):
    if state is None:
        return None
    module = copy.deepcopy(model)
    module.load_state_dict(state["weights"])
    set_frozen(module, state["frozen"])
    return module.train(state["training"])


def _params_state(params: dict) -> dict:
    return {key: {"name": data.name, "data": data.data.detach()} for key, data in params.items()}


def _params(state: dict, device) -> dict:
    from avalanche.training.utils import ParamData

    return {key: ParamData(part["name"], init_tensor=part["data"].to(device).clone(), device=device)
            for key, part in state.items()}


# ---------------------------------------------------------------- each plugin


def _ewc_state(plugin) -> dict:
    return {"saved_params": {int(exp): _params_state(params) for exp, params in plugin.saved_params.items()},
            "importances": {int(exp): _params_state(params) for exp, params in plugin.importances.items()}}


def _restore_ewc(plugin, state: dict, strategy) -> None:
    device = strategy.device  # where EWC's copies of the parameters live (copy_params_dict)
    plugin.saved_params = defaultdict(dict, {exp: _params(part, device) for exp, part in state["saved_params"].items()})
    plugin.importances = defaultdict(dict, {exp: _params(part, device) for exp, part in state["importances"].items()})


def _si_state(plugin) -> dict:
    return {"ewc_data": [_params_state(part) for part in plugin.ewc_data],
            "syn_data": {key: _params_state(part) for key, part in plugin.syn_data.items()}}


def _restore_si(plugin, state: dict, strategy) -> None:
    if len(state["ewc_data"]) != 2 or set(state["syn_data"]) != set(plugin.syn_data):
        raise ValueError("malformed si state")
    cpu = torch.device("cpu")  # SI extracts every value to the CPU
    plugin.ewc_data = tuple(_params(part, cpu) for part in state["ewc_data"])
    plugin.syn_data = {key: _params(part, cpu) for key, part in state["syn_data"].items()}


def _lwf_state(plugin) -> dict:
    lwf = plugin.lwf
    classes = {int(task): [int(c) for c in seen] for task, seen in lwf.prev_classes_by_task.items()}
    return {"expcount": int(lwf.expcount), "prev_classes": classes,
            "prev_model": None if lwf.prev_model is None else module_state(lwf.prev_model)}


def _restore_lwf(plugin, state: dict, strategy) -> None:
    lwf = plugin.lwf
    lwf.expcount = state["expcount"]
    lwf.prev_classes_by_task = defaultdict(set, {task: set(classes) for task, classes in state["prev_classes"].items()})
    lwf.prev_model = _module_like(state["prev_model"], strategy.model)


def _lfl_state(plugin) -> dict:
    return {"prev_model": None if plugin.prev_model is None else module_state(plugin.prev_model)}


def _restore_lfl(plugin, state: dict, strategy) -> None:
    plugin.prev_model = _module_like(state["prev_model"], strategy.model)


def _class_balanced(plugin):
    from avalanche.training.storage_policy import ClassBalancedBuffer

    policy = plugin.storage_policy
    if not isinstance(policy, ClassBalancedBuffer):  # hem's replay builds one; another is not saved
        raise TypeError(f"replay buffer {type(policy).__name__} is not one hem checkpoints")
    return policy


def _replay_state(plugin) -> dict:
    policy = _class_balanced(plugin)
    groups = []
    for label, group in policy.buffer_groups.items():
        samples = [group.buffer[i] for i in range(len(group.buffer))]  # each [image, label, task label]
        groups.append({"label": int(label), "max_size": int(group.max_size),
                       "x": torch.stack([s[0] for s in samples]) if samples else torch.empty(0),
                       "y": torch.tensor([int(s[1]) for s in samples], dtype=torch.int64),
                       "task": torch.tensor([int(s[-1]) for s in samples], dtype=torch.int64),
                       "weights": group._buffer_weights.clone()})
    return {"max_size": int(policy.max_size), "seen_classes": [int(c) for c in policy.seen_classes], "groups": groups}


def _restore_replay(plugin, state: dict, strategy) -> None:
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensors
    from avalanche.training.storage_policy import ReservoirSamplingBuffer

    policy = _class_balanced(plugin)
    for group in state["groups"]:
        if not (len(group["x"]) == len(group["task"]) == len(group["weights"]) == len(group["y"]) <= group["max_size"]):
            raise ValueError("malformed replay buffer")
    datasets = [tensors(group["x"], group["y"], targets=group["y"], task_labels=group["task"].tolist())
                if len(group["y"]) else None for group in state["groups"]]
    # A group emptied by a resize is an empty subset of a dataset of images, labels and task labels;
    # the buffer concatenates the groups and takes its fields from the first, so an empty one must
    # have them too.
    template = next((dataset for dataset in datasets if dataset is not None), None)
    groups = {}
    for group, dataset in zip(state["groups"], datasets):
        buffer = ReservoirSamplingBuffer(group["max_size"])
        if dataset is None and template is not None:
            dataset = template.subset([])
        if dataset is not None:
            buffer.buffer = dataset
        buffer._buffer_weights = group["weights"].clone()
        groups[group["label"]] = buffer
    policy.max_size, policy.seen_classes, policy.buffer_groups = state["max_size"], set(state["seen_classes"]), groups


_CAPTURE = {"ewc": _ewc_state, "si": _si_state, "lwf": _lwf_state, "lfl": _lfl_state, "replay": _replay_state}
_RESTORE = {"ewc": _restore_ewc, "si": _restore_si, "lwf": _restore_lwf, "lfl": _restore_lfl,
            "replay": _restore_replay}
