"""``hem evaluate --weights FILE --arch A --dataset D`` (or ``--model package.module:factory``): measure
a network hem did not train, and write its result where no trained run's goes.

``plan`` makes every check before anything is written: the evaluation settings, the weights (a
state_dict, read weights-only), the network and that the weights fit it, the data and the files the
evaluations read, that the network's outputs fit the dataset, and the result path. ``measure`` then
measures it under the path's run lock (``hemcli.evaluation.external.measure``: the suite and record
of ``hemcli.evaluation.evaluate``) and writes the result atomically. The result lies at

    <out>/external/<dataset>/<arch or package.module_factory>/<weights file stem>--<id>.json

(``init`` for a ``--model`` without weights); ``id`` hashes the recipe's condition, which holds the
weights' SHA-256 (``recipe.external``), so other weights never share a result, and no trained run
(``<out>/<task>/...``) does either.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from hemcli.errors import HemError, unknown_name

EXTERNAL_FOLDER = "external"
NO_WEIGHTS_LABEL = "init"  # a --model measured as its factory builds it
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=,-]")
LABEL_LIMIT = 60


@dataclass
class External:
    """A network trained elsewhere, checked and ready to measure, and where its result goes."""

    cfg: dict  # the measurement's recipe: dataset, device, eval, evaluation
    recipe: dict  # what the result records (cfg with the network, the unknown loss and ``external``)
    out: Path
    name: str  # the result path below ``out``, without ``.json``
    condition: dict
    model: object  # nn.Module on dm's device, its weights loaded
    data: object
    dm: object
    overwrite: bool = False

    @property
    def path(self) -> Path:
        return self.out / f"{self.name}.json"


def check_network_options(weights: Path | None, arch: str | None, model: str | None, dataset: str | None) -> None:
    """The combinations of --weights, --arch, --model and --dataset that name one network to measure."""
    if arch is not None and model is not None:
        raise HemError("--arch and --model both name the network; give one (--arch for a network of hem's "
                       "registry, --model package.module:factory for your own)")
    if weights is not None and arch is None and model is None:
        raise HemError("--weights needs the network they are for: --arch A (hem archs lists them) or --model "
                       "package.module:factory (a function returning your nn.Module)")
    if arch is not None and weights is None:
        raise HemError(f"--arch {arch} needs --weights FILE (its state_dict, saved with "
                       "torch.save(model.state_dict())); hem does not measure an untrained registry network")
    if dataset is None:
        from hemcli.data import DATASETS

        raise HemError(f"--{'weights' if weights is not None else 'model'} needs --dataset D, the dataset the "
                       f"network classifies; valid choices: {', '.join(DATASETS)}")


def plan(weights: Path | None, arch: str | None, model: str | None, dataset: str, overrides: Mapping[str, object],
         out: Path, overwrite: bool = False) -> External:
    """Every check, in the order of their cost, before anything is written; the network to measure."""
    from hemcli.engine.device import DeviceManager, seed_everything
    from hemcli.evaluation import external
    from hemcli.evaluation.suite import preflight
    from hemcli.evaluation.weights import read_state_dict, sha256_of
    from hemcli.runs.condition import condition_id, condition_of
    from hemcli.runs.paths import check_output

    check_network_options(weights, arch, model, dataset)
    cfg = external.evaluation_recipe({**overrides, "dataset.name": dataset})
    if arch is not None:
        _check_arch(arch, dataset)
    state = read_state_dict(weights) if weights is not None else None
    source = {**({"weights": str(weights), "sha256": sha256_of(weights)} if weights is not None else {}),
              **({"model": model} if model is not None else {})}
    recipe = external.recipe_of(cfg, arch or model, source)
    identity = condition_id(condition_of(recipe))
    label = _UNSAFE.sub("_", weights.stem)[:LABEL_LIMIT] if weights is not None else NO_WEIGHTS_LABEL
    name = Path(EXTERNAL_FOLDER, _UNSAFE.sub("_", dataset), _UNSAFE.sub("_", (arch or model).replace(":", "_")),
                f"{label}--{identity}").as_posix()
    item_path = Path(out) / f"{name}.json"
    check_output(item_path, overwrite)
    data = external.dataset_in_memory(cfg)
    dm = DeviceManager.from_config(cfg)
    preflight(cfg, data)  # the unknown sets and corruption files the evaluations will read
    seed_everything(cfg["seed"])  # a factory's initial weights are the same on every run
    network = _network(arch, model, state, weights, data, dataset)
    network = dm.prepare_model(network)
    external.check_outputs(network, data, dm, dataset)
    return External(cfg, recipe, Path(out), name, {"id": identity, "label": label, "differs": {}}, network, data, dm,
                    overwrite)


def _check_arch(arch: str, dataset: str) -> None:
    """``arch`` is a registry network that takes the dataset's images (before any data is read)."""
    from hemcli.data import dataset_info
    from hemcli.models import ARCHS, fitting

    info = dataset_info(dataset)
    if arch not in ARCHS:
        raise unknown_name("arch", arch, fitting(info.input_shape) or ARCHS)
    reason = ARCHS[arch].misfit(info.input_shape)
    if reason:
        raise HemError(f"{reason}; dataset {dataset} has {info.input_shape[-2]}x{info.input_shape[-1]} images "
                       f"(hem archs --dataset {dataset} lists those that fit)")


def _network(arch: str | None, model: str | None, state: dict | None, weights: Path | None, data, dataset: str):
    """The registry network ``arch``, or the one ``model``'s factory returns, with ``state`` loaded."""
    from hemcli.evaluation.weights import load_fitting, network_from_factory
    from hemcli.models import build_model

    if arch is not None:
        def rebuild(classes: int):
            return build_model(arch, data.input_shape, classes)
    else:
        def rebuild(classes: int):
            return network_from_factory(model, classes)
    network = rebuild(data.num_classes)
    if state is None:
        return network
    takes_classes = arch is not None or _takes_num_classes(model)
    return load_fitting(network, state, weights, arch or model, dataset, data.num_classes,
                        rebuild if takes_classes else None)


def _takes_num_classes(spec: str) -> bool:
    import inspect

    from hemcli.evaluation.weights import load_factory

    try:
        return "num_classes" in inspect.signature(load_factory(spec)).parameters
    except (TypeError, ValueError):
        return False


def measure(item: External, quiet: bool = False) -> dict:
    """Measure ``item`` and write its result (atomically, under its run lock); returns the result."""
    from hemcli.evaluation import external
    from hemcli.fileio import write_json_atomic
    from hemcli.runs.lock import RunLock
    from hemcli.runs.paths import attack_state_path, check_output, remove_attack_states

    path = item.path
    with RunLock(path):
        check_output(path, item.overwrite)  # again: another process may have written it meanwhile
        if item.overwrite:
            remove_attack_states(path)
        result = external.measure(item.model, item.cfg, item.data, item.dm, item.recipe, quiet=quiet,
                                  attack_state=lambda norm: attack_state_path(path, norm))
        result = {**result, "run": item.name, "condition": item.condition}
        write_json_atomic(path, result)
        remove_attack_states(path)
    return result


def is_external(result: dict) -> bool:
    """A result of a network trained elsewhere (``hem evaluate --weights``/``--model``)."""
    recipe = result.get("recipe")
    return isinstance(recipe, dict) and isinstance(recipe.get("external"), dict)
