"""One planned run: its resolved recipe, its result path, its condition, and the command that plans it.

``plan_run`` is the one way from (task, recipe file, flags, ``--set``s, ``--out``) to a run, used by
``hem <task>`` and by ``hem sweep`` for every run of a grid, so a sweep's run and the command line
it prints for that run (``--dry-run``, and the rerun line of a failure) mean exactly the same run.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from hemcli import recipes, values
from hemcli.errors import HemError, unknown_name
from hemcli.runs import condition as conditions

# Flags are shorthand for recipe keys (`--lr 0.1` is `--set optim.lr=0.1`); names and paths stay text.
FLAG_KEYS = {"dataset": "dataset.name", "arch": "model.arch", "loss": "loss.name", "epochs": "epochs",
             "seed": "seed", "lr": "optim.lr", "batch_size": "batch_size", "device": "device",
             "data_root": "dataset.root", "eval": "eval", "scores": "evaluation.scores",
             "ood_samples": "evaluation.ood_samples", "corrupt_samples": "evaluation.corrupt_samples",
             "attack_samples": "evaluation.attack_samples", "attack_batch_size": "evaluation.attack_batch_size",
             "attack_strength": "evaluation.attack_strength", "imbalance": "longtail.imbalance",
             "benchmark": "benchmark.name", "scenario": "benchmark.scenario", "strategy": "strategy.name",
             "encoder": "model.encoder", "logger": "log.loggers"}
TEXT_FLAGS = ("dataset", "arch", "loss", "device", "data_root", "attack_strength", "benchmark", "scenario", "strategy",
              "encoder")
# Flags that take a comma-separated list (`--eval clean,ood`), or a YAML list (`--eval '[clean, ood]'`).
LIST_FLAGS = ("eval", "scores", "logger")
# a command says what it runs
_ALWAYS_SHOWN = ("dataset.name", "model.arch", "loss.name", "seed", "benchmark.name", "strategy.name",
                 "model.encoder")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


@dataclass(frozen=True)
class RunSpec:
    task: str
    cfg: dict
    out: Path
    name: str  # the result path below ``out``, without ``.json``
    condition: dict  # {"id", "label", "differs"}: what the result JSON records
    command: tuple[str, ...]  # ``hem <task> ...`` planning this very run

    @property
    def path(self) -> Path:
        return self.out / f"{self.name}.json"

    @property
    def seed(self) -> int:
        return self.cfg["seed"]

    def shell_command(self, *extra: str) -> str:
        return shlex.join([*self.command, *extra])


def task_info(name: str):
    """The task's ``TaskInfo`` (``hemcli.tasks``), imported here: it brings torch."""
    from hemcli.tasks import task_info as info

    return info(name)


def paper_recipe(task: str, flags: Mapping[str, object]):
    """The packaged paper recipe for what the flags name, where there is one: ``<dataset>-<arch>``
    (``<benchmark>-<strategy>`` for ``continual``: the task's ``recipe_keys``); every part named."""
    from hemcli.recipes.packaged import paper_recipe as packaged_paper_recipe

    return packaged_paper_recipe(task, [flags.get(key) for key in task_info(task).recipe_keys])


def plan_run(task: str, recipe: str | Path | None, flags: Mapping[str, object], sets: Iterable[str],
             out: str | Path, drop_foreign_params: bool = False) -> RunSpec:
    """Resolve and check the recipe, fill in the loss's default parameters, and name the run.

    Without a recipe file, flags that name a dataset and an arch with a paper recipe
    (``paper_recipe``) run that recipe: ``--dataset tin --arch wrn28-10`` trains as Table 3 says.

    ``drop_foreign_params``: leave out loss parameters the run's loss does not take (a sweep over
    several losses), instead of refusing them.
    """
    from hemcli.recipes.packaged import locate

    info = task_info(task)
    schema, complete = info.schema(), info.complete
    recipe = locate(recipe, task) if recipe is not None else paper_recipe(task, flags)
    finished = finished_result(recipe, task) if recipe is not None else None
    if finished is not None:  # `-r seedN.json`: the run's recorded recipe is the base
        return _plan_from_result(task, info, recipe, finished, flags, sets, out, drop_foreign_params)
    cfg = complete(recipes.resolve(schema, task, recipe, flags, list(sets)))
    cfg["loss"]["params"] = _loss_params(cfg["loss"], drop_foreign_params)
    raw_base = complete(recipes.resolve(schema, task, recipe))
    base = {**raw_base, "loss": {**raw_base["loss"], "params": _loss_params(raw_base["loss"], True)}}
    condition = _condition_record(cfg, base)
    folders = _folders(cfg, info.path_keys)
    name = Path(*folders, f"{condition['label']}--{condition['id']}", f"seed{cfg['seed']}")
    command = command_line(task, recipe, schema, cfg, raw_base, out)
    return RunSpec(task, cfg, Path(out), name.as_posix(), condition, tuple(command))


def finished_result(recipe, task: str) -> dict | None:
    """The result a ``--recipe seedN.json`` names (its recipe reruns the run), None for a recipe;
    a HemError for a file that is not a complete result, or one of another task."""
    if recipe.path.suffix != ".json":
        return None
    from hemcli.report.reading import read_result

    result, reason = read_result(recipe.path)
    if result is None:
        raise HemError(f"{recipe.name}: {reason}")
    if result["task"] != task:
        raise HemError(f"{recipe.name} is a result of hem {result['task']}, not of hem {task}; "
                       f"rerun it with hem {result['task']} -r {recipe.name}")
    return result


def _plan_from_result(task: str, info, recipe, result: dict, flags, sets, out, drop_foreign_params) -> RunSpec:
    """The run a finished result records, with the flags and ``--set``s over it: the same condition
    (and result folder) unless they change what is trained; the label keeps what the original run
    differed in."""
    from hemcli.evaluation.suite import evaluation_names
    from hemcli.losses import LOSSES

    schema = info.schema()
    base_recipe = dict(result["recipe"])
    if isinstance(base_recipe.get("eval"), list):  # results written before an evaluation was renamed
        base_recipe["eval"] = evaluation_names(base_recipe["eval"])
    cfg = info.complete(recipes.resolve(schema, task, None, flags, list(sets), base=base_recipe))
    cfg["loss"]["params"] = _loss_params(cfg["loss"], drop_foreign_params)
    raw_base = info.complete(recipes.resolve(schema, task, None, base=base_recipe))
    condition = conditions.condition_of(cfg)
    recorded = (result.get("condition") or {}).get("differs") or {}
    still = {key: value for key, value in recorded.items()  # what the original differed in, where it still does
             if key in condition and conditions.canonical(condition[key]) == conditions.canonical(value)}
    differs = {**still, **conditions.differences(condition, conditions.condition_of(raw_base),
                                                 LOSSES[cfg["loss"]["name"]].defaults)}
    record = {"id": conditions.condition_id(condition), "label": conditions.label(differs, condition),
              "differs": differs}
    name = Path(*_folders(cfg, info.path_keys), f"{record['label']}--{record['id']}", f"seed{cfg['seed']}")
    command = command_line(task, recipe, schema, cfg, raw_base, out)
    return RunSpec(task, cfg, Path(out), name.as_posix(), record, tuple(command))


def _loss_params(loss: Mapping, drop_foreign: bool) -> dict:
    from hemcli.losses import loss_params

    return loss_params(loss["name"], loss["params"], drop_unknown=drop_foreign)


def _folders(cfg: Mapping, keys: Iterable[str]) -> list[str]:
    parts = [cfg["task"], *(recipes.get(cfg, key) for key in keys)]
    return [_UNSAFE.sub("_", str(part)) for part in parts]


def _condition_record(cfg: Mapping, base: Mapping) -> dict:
    from hemcli.losses import LOSSES

    condition = conditions.condition_of(cfg)
    identity = conditions.condition_id(condition)
    differs = conditions.differences(condition, conditions.condition_of(base),
                                     LOSSES[cfg["loss"]["name"]].defaults)
    return {"id": identity, "label": conditions.label(differs, condition), "differs": differs}


# ---------------------------------------------------------------- the command line of a run


def spell_arg(value: object) -> str:
    """A value as ``--set`` reads it back to the same value (``hemcli.values.read_value``)."""
    if isinstance(value, str):
        try:
            same = value != "" and values.read_value(value) == value
        except HemError:
            same = False
        return value if same else json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def command_line(task: str, recipe, schema: Mapping, cfg: Mapping, raw_base: Mapping, out) -> list[str]:
    """``hem <task> [--recipe R] --out O`` and a flag or ``--set`` for every key that differs from the recipe."""
    args = ["hem", task, *(["--recipe", recipe.name] if recipe is not None else []), "--out", str(out)]
    flags = {key: flag for flag, key in FLAG_KEYS.items()}
    mine, theirs = recipes.flatten(cfg, schema), recipes.flatten(raw_base, schema)
    for key in schema:
        if key == "loss.params":
            args += _params_args(mine[key], theirs[key], cfg["loss"]["name"])
        elif key not in _ALWAYS_SHOWN and mine[key] == theirs[key] and type(mine[key]) is type(theirs[key]):
            continue
        elif key == "deterministic" and mine[key] is True:
            args.append("--deterministic")
        elif key in flags:
            flag = flags[key]
            text = mine[key] if flag in TEXT_FLAGS and isinstance(mine[key], str) else spell_arg(mine[key])
            if flag in LIST_FLAGS and mine[key] and all(isinstance(v, str) and "," not in v for v in mine[key]):
                text = ",".join(mine[key])
            args += [f"--{flag.replace('_', '-')}", text]
        else:
            args += ["--set", f"{key}={spell_arg(mine[key])}"]
    return args


def _params_args(params: Mapping, recipe_params: Mapping, loss: str) -> list[str]:
    """``--set loss.params.M=500`` per changed parameter; the whole mapping when the recipe's
    parameters do not fit this loss (a CE run of a sweep whose recipe sets HEM's M)."""
    from hemcli.losses import LOSSES

    defaults = LOSSES[loss].defaults
    if all(key in defaults for key in recipe_params):
        reference = {**defaults, **recipe_params}
        return [arg for key, value in params.items() if value != reference.get(key)
                for arg in ("--set", f"loss.params.{key}={spell_arg(value)}")]
    changed = {key: value for key, value in params.items() if value != defaults.get(key)}
    return ["--set", f"loss.params={spell_arg(changed)}"]
