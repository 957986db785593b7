"""``hem evaluate`` and ``hem attack``: measure finished runs again, from their recipe and checkpoint.

Every file is checked before any is measured (a result, its checkpoint, the recipe with the new
evaluation settings, the data, and that the weights fit the recipe's network), so bad input changes
no result. Each result is then measured under its run lock and rewritten atomically with every
other field kept: new metrics replace the same-named old ones, the evaluation records and timings
are merged, and ``measured_again`` lists each re-measurement with its environment. An attack keeps
its finished batches beside the result (``runs.paths.attack_state_path``), so an interrupted
``hem attack`` goes on where it stopped.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from hemcli.errors import HemError


@dataclass
class Finished:
    """One finished run to measure again: its result, and its recipe with the new settings."""

    path: Path
    result: dict
    cfg: dict

    @property
    def checkpoint(self) -> Path:
        from hemcli.runs.paths import checkpoint_path
        return checkpoint_path(self.path)


def plan(paths: Iterable[str | Path], overrides: Mapping[str, object]) -> list[Finished]:
    """Every check that needs no model: the results, their checkpoints and the new recipe keys."""
    from hemcli.report.reading import find_results
    from hemcli.progress import warn

    files = find_results(list(paths), warn=warn, refuse_irregular=True)
    if not files:
        raise HemError(f"no result files (*.json) in {', '.join(str(p) for p in paths)}")
    planned = [_plan_one(path, overrides) for path in files]
    found = [item for item in planned if isinstance(item, Finished)]
    skipped = [reason for reason in planned if isinstance(reason, str)]
    if not found:  # only results of networks trained elsewhere: say how those are measured again
        raise HemError(skipped[0])
    for reason in skipped:
        warn(f"skipping {reason}")
    return found


# The tasks whose finished runs can be measured again: a classifier and its training data
MEASURABLE = ("classify", "longtail")


def _plan_one(path: Path, overrides: Mapping[str, object]) -> Finished | str:
    """The run of ``path``, or why it is skipped: a network trained elsewhere has no checkpoint."""
    from hemcli import recipes
    from hemcli.report.reading import read_result
    from hemcli.runs.paths import check_writable_folder, checkpoint_path
    from hemcli.tasks import task_info
    from hemcli.tasks.evaluate_external import is_external

    result, reason = read_result(path)
    if result is None:
        raise HemError(f"{path}: {reason}")
    if is_external(result):
        return (f"{path}: the result of a network trained elsewhere; measure it again with hem evaluate "
                "--weights (or --model) and --overwrite")
    task = result.get("task")
    if task not in MEASURABLE:
        raise HemError(f"{path}: a {task!r} result; hem evaluate and hem attack measure "
                       f"{' and '.join(MEASURABLE)} results")
    if not checkpoint_path(path).is_file():
        raise HemError(f"{path} has no checkpoint beside it ({checkpoint_path(path).name}); the trained "
                       "weights are needed to measure it again")
    check_writable_folder(path.parent)
    try:
        cfg = recipes.resolve(task_info(task).schema(), task, flags=overrides, base=_readable(result["recipe"]))
    except HemError as err:
        raise HemError(f"{path}: {err}") from None
    return Finished(path, result, cfg)


def _readable(recipe: dict) -> dict:
    """A finished run's recipe, its legacy evaluation names read as today's."""
    from hemcli.evaluation.suite import evaluation_names

    recipe = dict(recipe)
    if isinstance(recipe.get("eval"), list):
        recipe["eval"] = evaluation_names(recipe["eval"])
    return recipe


def load_model(item: Finished, data, dm):
    """The run's network with its trained weights, on the device; a HemError when they do not fit."""
    from hemcli.fileio import load_weights_only
    from hemcli.models import build_model
    from hemcli.engine.checkpoint import CHECKPOINT_FORMAT
    from hemcli.runs.condition import same_run

    where = item.checkpoint
    try:
        state = load_weights_only(where)  # a planted pickle builds nothing
    except OSError as err:
        raise HemError(f"cannot read checkpoint {where}: {err.strerror or err}") from None
    except Exception:  # truncated, another format, or a pickle that is not weights-only
        raise HemError(f"cannot read checkpoint {where}: not a hem checkpoint") from None
    if not (isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT and isinstance(state.get("model"), dict)):
        raise HemError(f"cannot read checkpoint {where}: not a hem checkpoint")
    if not isinstance(state.get("recipe"), dict) or not same_run(state["recipe"], item.result["recipe"]):
        raise HemError(f"checkpoint {where} belongs to another run (its recipe differs from {item.path.name}'s)")
    if state.get("epoch") != item.cfg["epochs"]:
        raise HemError(f"checkpoint {where} is from epoch {state.get('epoch')} of {item.cfg['epochs']}: "
                       "the run did not finish")
    model = build_model(item.cfg["model"]["arch"], data.input_shape, data.num_classes,
                        normalised=item.cfg["model"].get("pretrained", False))
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, ValueError) as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise HemError(f"checkpoint {where} does not fit {item.cfg['model']['arch']} ({first})") from None
    return dm.prepare_model(model)


class DataCache:
    """Each (dataset, data folder) loaded once for all the results of a sweep."""

    def __init__(self):
        self.loaded = {}

    def get(self, cfg: dict):
        """The run's data as it trained on it: its long-tailed subset (``hem longtail``), then its
        ``dataset.limit`` part, where it had them."""
        from hemcli.data import StreamData, limited, load_dataset

        limit = cfg["dataset"].get("limit")
        factor = _longtail_factor(cfg)
        key = (cfg["dataset"]["name"], cfg["dataset"]["root"], limit, factor)
        if key not in self.loaded:
            data = load_dataset(cfg["dataset"]["name"], cfg["dataset"]["root"], cfg["dataset"]["download"])
            if factor is not None and not isinstance(data, StreamData):
                from hemcli.tasks.longtail import subset
                data = subset(data, factor)
            data = limited(data, limit)
            if isinstance(data, StreamData):
                raise HemError(f"dataset {cfg['dataset']['name']} streams from disk; hem evaluate measures "
                               "sets held in memory only")
            self.loaded[key] = data
        return self.loaded[key]


def _longtail_factor(cfg: dict) -> float | None:
    """f of a long-tailed run's subset; None for a balanced run."""
    if cfg.get("task") != "longtail":
        return None
    from hemcli.data import dataset_info
    from hemcli.tasks.longtail import factor

    return factor(cfg, dataset_info(cfg["dataset"]["name"]).num_classes)


def check_all(items: list[Finished], cache: DataCache) -> None:
    """Load every run's data and weights, and open every file its evaluations read (unknown sets,
    corruption releases), once before anything is measured or written."""
    from hemcli.engine.device import DeviceManager
    from hemcli.evaluation.suite import preflight

    for item in items:
        data = cache.get(item.cfg)
        preflight(item.cfg, data)  # item.cfg["eval"]: what this command measures
        load_model(item, data, DeviceManager.from_config({**item.cfg, "device": "cpu"}))


def measure(item: Finished, names: list[str], cache: DataCache, quiet: bool = False) -> dict:
    """Measure ``item`` with ``names`` and rewrite its result; returns the new result."""
    from hemcli.engine.device import DeviceManager, seed_everything
    from hemcli.evaluation.suite import Subject, evaluate
    from hemcli.report.reading import read_result
    from hemcli.fileio import write_json_atomic
    from hemcli.runs.lock import RunLock
    from hemcli.runs.paths import attack_state_path, remove_attack_states

    dm = DeviceManager.from_config(item.cfg)
    data = cache.get(item.cfg)
    with RunLock(item.path):
        current, reason = read_result(item.path)  # another command may have added metrics meanwhile
        if current is None:
            raise HemError(f"{item.path}: {reason}")
        seed_everything(item.cfg["seed"])
        subject = Subject(load_model(item, data, dm), data, item.cfg, dm, quiet=quiet,
                          attack_state=lambda norm: attack_state_path(item.path, norm))
        metrics, details, seconds = evaluate(subject, names)
        updated = merged(current, item.cfg, names, metrics, details, seconds, dm.describe())
        write_json_atomic(item.path, updated)
        remove_attack_states(item.path)
    return updated


def merged(result: dict, cfg: dict, names: list[str], metrics: dict, details: dict, seconds: dict,
           device: dict) -> dict:
    """``result`` with the new measurements; every field it had is kept."""
    from hemcli.evaluation.suite import evaluation_names
    from hemcli.runs.record import environment

    done = evaluation_names([*_readable(result["recipe"]).get("eval", []), *names])
    timings = dict(result.get("timings") or {})
    timings["evaluation_seconds"] = {**(timings.get("evaluation_seconds") or {}), **seconds}
    again = {"at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "eval": list(names),
             "evaluation": cfg["evaluation"], "environment": environment(device), "seconds": seconds}
    return {**result,
            "recipe": {**result["recipe"], "eval": done, "evaluation": cfg["evaluation"]},
            "metrics": {**result["metrics"], **metrics},
            "evaluation": {**(result.get("evaluation") or {}), **details},
            "timings": timings,
            "measured_again": [*(result.get("measured_again") or []), again]}
