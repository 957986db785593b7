"""The training commands (classify, longtail, continual, segment), each built by ``_training_command``
from the flag table (``hemcli.cli.flags``) and the run options; all go through ``_train_task``."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from hemcli.cli.flags import CONTINUAL, flags_of
from hemcli.cli.options import EvalHelp, OutOpt, ProgressEveryOpt, QuietOpt, _flag_values, _set_progress_every, app
from hemcli.cli.output import _emit, _headline, _results_only
from hemcli.errors import Interrupted, Terminated

RecipeOpt = typer.Option(None, "--recipe", "-r", help="A packaged recipe (hem recipes lists them, e.g. "
                         "classify/cifar10-resnet32), a recipe YAML, or a result JSON to run again; flags and --set "
                         "override it.")
SetOpt = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                      help="Set any recipe key, e.g. --set optim.lr=0.05 or --set loss.params.M=1000 (repeatable).")
OverwriteOpt = typer.Option(False, "--overwrite", help="Train again over an existing result (and its checkpoint).")
ResumeOpt = typer.Option(False, "--resume", help="Continue an interrupted run from its checkpoint.")

# The run options every training command takes after its flags: (parameter, type, typer option)
_RUN_OPTIONS = [
    ("set_", List[str], SetOpt),
    ("out", Path, OutOpt),
    ("overwrite", bool, OverwriteOpt),
    ("resume", bool, ResumeOpt),
    ("quiet", bool, QuietOpt),
    ("progress_every", Optional[str], ProgressEveryOpt),
    ("deterministic", bool, typer.Option(False, "--deterministic", help="Deterministic kernels.")),
    ("dry_run", bool, typer.Option(False, "--dry-run", help="Resolve and check everything, print the result path "
                                                            "the run would write; train and write nothing.")),
    ("verbose", bool, typer.Option(False, "--verbose", help="The resolved recipe on stderr (with --dry-run)"
                                                            "; hem continual: Avalanche's own loggers too.")),
]


def _train_task(task: str, recipe, flags: dict, sets, out, overwrite, resume, quiet, progress_every, deterministic,
                dry_run, verbose) -> None:
    """Shared by every training command: plan (every check), train, write atomically, print the path."""
    _set_progress_every(progress_every)
    with _results_only():
        path = _plan_and_train(task, recipe, flags, sets, out, overwrite, resume, quiet, deterministic, dry_run,
                               verbose)
    if path is not None:
        _emit(str(path))


def _plan_and_train(task: str, recipe, flags: dict, sets, out, overwrite, resume, quiet, deterministic, dry_run,
                    verbose):
    """The run's result path once it is written (None on a data-parallel rank other than 0)."""
    from hemcli.recipes import read_text_inputs

    if deterministic:
        sets = [*sets, "deterministic=true"]
    read_text_inputs(recipe, sets, task)  # hostile YAML refused before torch is imported (~0.6 GB, seconds)
    from hemcli.runs import execute
    from hemcli.runs.paths import ResultExists, checkpoint_path
    from hemcli.runs.spec import plan_run

    spec = plan_run(task, recipe, flags, sets, out)
    from hemcli.loggers import check_installed
    check_installed(spec.cfg["log"]["loggers"])  # a missing logger package: one line, before any work
    if recipe is None and not quiet:
        _say_which_recipe(task, flags)
    if recipe is not None and Path(str(recipe)).suffix != ".json" and _has_grid(recipe, task):
        from hemcli.progress import warn
        warn(f"{recipe} has a grid: block; hem {task} runs one run of it (hem sweep {task} runs the grid)")
    if dry_run:
        return _dry_run(spec, overwrite, resume, verbose)
    try:
        result = execute.train(spec, overwrite=overwrite, resume=resume, quiet=quiet)
    except ResultExists:  # the same condition and seed already finished: rerunning a pipeline line is fine
        _already_done(spec)
        return spec.path
    except KeyboardInterrupt as stop:
        checkpoint = checkpoint_path(spec.path)
        kept = (f"continue with --resume (checkpoint {checkpoint})" if checkpoint.is_file()
                else "no checkpoint was written yet")
        terminated = isinstance(stop, Terminated)
        raise Interrupted(f"{'terminated' if terminated else 'interrupted'}; {kept}", terminated) from None
    if result is None:  # a rank other than 0 of a data-parallel run: rank 0 reports
        return None
    if not quiet:
        shown = ", ".join(f"{k} {result['metrics'][k]:.2f}" for k in _headline(result))
        print(f"{shown}  ->  {spec.path}", file=sys.stderr)
    return spec.path


def _say_which_recipe(task: str, flags: dict) -> None:
    """Name the paper recipe ``--dataset D --arch A`` picked, or say there is none for that pair."""
    from hemcli.runs.spec import paper_recipe, task_info

    keys = task_info(task).recipe_keys
    if not all(flags.get(key) is not None for key in keys):
        return
    found = paper_recipe(task, flags)
    if found is not None:
        print(f"hem: training as the paper's recipe {found.name} says", file=sys.stderr)
    else:
        pair = " and ".join(f"{key.split('.')[0]} {flags[key]}" for key in keys)
        print(f"hem: no paper recipe for {pair}; training with hem's defaults (hem recipes {task} lists the paper's)",
              file=sys.stderr)


def _already_done(spec) -> None:
    """Say the run is finished; where it was measured with fewer evaluations than asked, how to add them."""
    from hemcli.report.reading import read_result

    result, _ = read_result(spec.path)
    done = set((result or {}).get("recipe", {}).get("eval") or [])
    missing = [name for name in spec.cfg.get("eval", []) if name not in done] if result else []
    hint = (f"; its evaluations lack {', '.join(missing)}: hem evaluate {spec.path} --eval {','.join(missing)}"
            if missing else "")
    print(f"hem: already done: {spec.path} (--overwrite trains it again){hint}", file=sys.stderr)


def _dry_run(spec, overwrite: bool, resume: bool, verbose: bool) -> Path:
    """Every check that needs no data and no write, what the run would do, and where it would write."""
    import yaml

    from hemcli.runs.paths import check_not_blocked, check_writable_folder, checkpoint_path
    from hemcli.runs.spec import task_info

    task_info(spec.task).check(spec.cfg)
    check_not_blocked(spec.path)
    check_writable_folder(spec.path.parent)
    if spec.path.is_file() and not overwrite:
        state = "already done"
    elif checkpoint_path(spec.path).is_file() and not overwrite:
        state = "would resume from its checkpoint" if resume else "unfinished: needs --resume or --overwrite"
    else:
        state = "would train"
    print(f"hem: dry run, {state}: {spec.shell_command()}", file=sys.stderr)
    if verbose:
        print(yaml.safe_dump(spec.cfg, sort_keys=False, default_flow_style=None).rstrip(), file=sys.stderr)
    return spec.path


def _has_grid(recipe, task: str) -> bool:
    from hemcli.recipes import recipe_grid

    return recipe_grid(recipe, task) is not None


def _training_command(task: str, doc: str, eval_default: str | None) -> None:
    """Register ``hem <task>``: ``--recipe``, the task's flags (recipe keys by ``FLAG_KEYS``; a switch
    stands for a ``--set``), ``--eval`` (default ``eval_default``; none where that is None) and the
    run options."""
    import inspect

    flags = flags_of(task)
    options = [("recipe", Optional[Path], RecipeOpt)]
    options += [(flag.name, bool, typer.Option(False, flag.option, help=flag.help_for(task))) if flag.switch else
                (flag.name, Optional[str], typer.Option(None, flag.option, metavar=flag.metavar,
                                                        help=flag.help_for(task))) for flag in flags]
    if eval_default:
        options.append(("eval_", Optional[str], typer.Option(None, "--eval", metavar="LIST",
                                                             help=f"{EvalHelp} Default: {eval_default}.")))
    options += _RUN_OPTIONS
    switches = {flag.name: flag.switch for flag in flags if flag.switch}

    def command(**values):
        sets = list(values.pop("set_")) + [switches[name] for name in switches if values.pop(name)]
        run_values = {name: values.pop(name) for name, _, _ in _RUN_OPTIONS[1:]}
        if task == CONTINUAL and run_values["verbose"]:
            sets.append("verbose=true")  # continual's recipe key: Avalanche's loggers
        recipe, eval_value = values.pop("recipe"), values.pop("eval_", None)
        _train_task(task, recipe, _flag_values(eval=eval_value, **values), sets, **run_values)

    command.__signature__ = inspect.Signature([
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        for name, kind, option in options])
    command.__doc__, command.__name__ = doc, task
    app.command(name=task)(command)


_training_command("classify", "Train a classifier with a loss, then measure it (default: digits, offline; clean "
                  "accuracy).", "clean")
_training_command(
    "longtail", "Train on a long-tailed subset (class j keeps its first floor(s_j f^j) samples), then measure it "
    "with many/medium/few-shot accuracy (default: digits, imbalance 10, offline).", "clean,shots")
_training_command(
    "continual", "Learn a stream of experiences with an Avalanche strategy and a loss, measuring every experience "
    "after each (default: split-digits, task scenario, naive, offline). Benchmarks: split-digits, split-mnist, "
    "split-fashion-mnist, split-cifar10, split-cifar100, permuted-mnist, permuted-fashion-mnist, permuted-digits. "
    "Strategies: naive, replay, si, ewc, lwf, lfl (their parameters: --set strategy.params.NAME=VALUE).", None)
_training_command(
    "segment", "Train a segmentation network (smp FPN) with a loss applied per pixel, then measure mean IoU on the "
    "test split (default: generated shapes, offline). Datasets: shapes, camvid, cityscapes, sbd, ade20k.", None)
