"""The training commands (classify, longtail, continual, segment), each built by ``_training_command``
from the options every training command takes and its own; all go through ``_train_task``."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from hemcli.cli.options import (AttackBatchOpt, AttackSamplesOpt, AttackStrengthOpt, CorruptSamplesOpt, EvalHelp,
                                OodSamplesOpt, OutOpt, QuietOpt, ScoresOpt, _flag_values, app)
from hemcli.cli.output import _emit, _headline, _results_only
from hemcli.errors import Interrupted, Terminated

RecipeOpt = typer.Option(None, "--recipe", "-r", help="Recipe YAML; flags and --set override it.")
SetOpt = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                      help="Set any recipe key, e.g. --set optim.lr=0.05 or --set loss.params.M=1000 (repeatable).")
OverwriteOpt = typer.Option(False, "--overwrite", help="Replace an existing result (and its checkpoint).")
ResumeOpt = typer.Option(False, "--resume", help="Continue an interrupted run from its checkpoint.")


def _train_task(task: str, recipe, flags: dict, sets, out, overwrite, resume, quiet, deterministic) -> None:
    """Shared by every training command: plan (every check), train, write atomically, print the path."""
    with _results_only():
        path = _plan_and_train(task, recipe, flags, sets, out, overwrite, resume, quiet, deterministic)
    if path is not None:
        _emit(str(path))


def _plan_and_train(task: str, recipe, flags: dict, sets, out, overwrite, resume, quiet, deterministic):
    """The run's result path once it is written (None on a data-parallel rank other than 0)."""
    from hemcli.recipes import read_text_inputs

    if deterministic:
        sets = [*sets, "deterministic=true"]
    read_text_inputs(recipe, sets)  # hostile YAML refused before torch is imported (~0.6 GB, seconds)
    from hemcli.runs import execute
    from hemcli.runs.paths import checkpoint_path
    from hemcli.runs.spec import plan_run

    spec = plan_run(task, recipe, flags, sets, out)
    if recipe is None and not quiet:
        from hemcli.runs.spec import paper_recipe

        found = paper_recipe(task, flags)
        if found is not None:
            print(f"hem: training as the paper's recipe {found} says", file=sys.stderr)
    if recipe is not None and _has_grid(recipe):
        from hemcli.progress import warn
        warn(f"{recipe} has a grid: block; hem {task} runs one run of it (hem sweep {task} runs the grid)")
    try:
        result = execute.train(spec, overwrite=overwrite, resume=resume, quiet=quiet)
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


def _has_grid(recipe) -> bool:
    from hemcli.recipes import recipe_grid

    return recipe_grid(recipe) is not None


# The options every training command takes: (parameter, type, typer option). A command adds its own.
_TRAINING_OPTIONS = [
    ("recipe", Optional[Path], RecipeOpt),
    ("dataset", Optional[str], typer.Option(None, help="digits (default, offline), mnist, fashion-mnist, cifar10, "
                                                       "...; `hem datasets` lists them.")),
    ("arch", Optional[str], typer.Option(None, help="lenet (default), convnet, mlp, resnet32, ...; "
                                                    "`hem archs --dataset D` lists them.")),
    ("loss", Optional[str], typer.Option(None, help="Loss name; `hem losses` lists them.")),
    ("epochs", Optional[str], typer.Option(None, metavar="INT", help="Training epochs.")),
    ("seed", Optional[str], typer.Option(None, metavar="INT", help="Seed.")),
    ("lr", Optional[str], typer.Option(None, metavar="FLOAT", help="Learning rate.")),
    ("batch_size", Optional[str], typer.Option(None, metavar="INT", help="Batch size.")),
    ("device", Optional[str], typer.Option(None, help="auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps.")),
    ("data_root", Optional[str], typer.Option(None, help="Data folder (default $HEM_DATA, else ./data).")),
    ("scores", Optional[str], ScoresOpt),
    ("ood_samples", Optional[str], OodSamplesOpt),
    ("corrupt_samples", Optional[str], CorruptSamplesOpt),
    ("attack_samples", Optional[str], AttackSamplesOpt),
    ("attack_batch_size", Optional[str], AttackBatchOpt),
    ("attack_strength", Optional[str], AttackStrengthOpt),
]
_RUN_OPTIONS = [
    ("set_", List[str], SetOpt),
    ("out", Path, OutOpt),
    ("overwrite", bool, OverwriteOpt),
    ("resume", bool, ResumeOpt),
    ("quiet", bool, QuietOpt),
    ("deterministic", bool, typer.Option(False, "--deterministic", help="Deterministic kernels.")),
]


def _training_command(task: str, doc: str, eval_default: str | None, extra=(), extra_sets=None,
                      base=_TRAINING_OPTIONS) -> None:
    """Register ``hem <task>``: the ``base`` training options, ``--eval`` (default ``eval_default``;
    none where that is None), the task's ``extra`` (name, type, option) flags -- recipe keys by
    ``FLAG_KEYS`` -- and the run options; ``extra_sets(values) -> [--set ...]`` turns switches into
    recipe settings."""
    import inspect

    eval_option = [("eval_", Optional[str], typer.Option(None, "--eval", metavar="LIST",
                                                         help=f"{EvalHelp} Default: {eval_default}."))]
    options = [*base, *(eval_option if eval_default else []), *extra, *_RUN_OPTIONS]
    switches = [name for name, kind, _ in extra if kind is bool]

    def command(**values):
        sets = list(values.pop("set_")) + (extra_sets({k: values.pop(k) for k in switches}) if extra_sets else [])
        run_values = [values.pop(name) for name, _, _ in _RUN_OPTIONS[1:]]
        recipe, eval_value = values.pop("recipe"), values.pop("eval_", None)
        flags = _flag_values(eval=eval_value, **values)
        _train_task(task, recipe, flags, sets, *run_values)

    command.__signature__ = inspect.Signature([
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        for name, kind, option in options])
    command.__doc__, command.__name__ = doc, task
    app.command(name=task)(command)


_training_command("classify", "Train a classifier with a loss, then measure it (default: digits, offline; clean "
                  "accuracy).", "clean")
_training_command(
    "longtail", "Train on a long-tailed subset (class j keeps its first floor(s_j f^j) samples), then measure it "
    "with many/medium/few-shot accuracy (default: digits, imbalance 10, offline).", "clean,shots",
    extra=[("imbalance", Optional[str], typer.Option(None, metavar="FLOAT", help="Largest / smallest class count "
                                                     "R (f = R^(-1/(C-1))); --set longtail.factor=f gives f itself.")),
           ("oversample", bool, typer.Option(False, "--oversample",
                                             help="Every class as often as the largest, each epoch."))],
    extra_sets=lambda switches: ["sampling=oversample"] if switches["oversample"] else [])
_training_command(
    "continual", "Learn a stream of experiences with an Avalanche strategy and a loss, measuring every experience "
    "after each (default: split-digits, task scenario, naive, offline). Benchmarks: split-digits, split-mnist, "
    "split-fashion-mnist, split-cifar10, split-cifar100, permuted-mnist, permuted-fashion-mnist, permuted-digits. "
    "Strategies: naive, replay, si, ewc, lwf, lfl (their parameters: --set strategy.params.NAME=VALUE).", None,
    base=[("arch", Optional[str], typer.Option(None, help="mlp (default; --set model.hidden=[W,...]) or a trunk "
                                                         "of `hem archs`, e.g. resnet18."))
          if option[0] == "arch" else option for option in _TRAINING_OPTIONS if option[0] in
          ("recipe", "arch", "loss", "epochs", "seed", "lr", "batch_size", "device", "data_root")],
    extra=[("benchmark", Optional[str], typer.Option(None, help="Benchmark, e.g. split-mnist (default split-digits).")),
           ("scenario", Optional[str], typer.Option(None, help="task or class (Split; default task), domain "
                                                               "(Permuted).")),
           ("strategy", Optional[str], typer.Option(None, help="naive (default), replay, si, ewc, lwf, lfl.")),
           ("verbose", bool, typer.Option(False, "--verbose", help="Avalanche's own loggers too."))],
    extra_sets=lambda switches: ["verbose=true"] if switches["verbose"] else [])


_training_command(
    "segment", "Train a segmentation network (smp FPN) with a loss applied per pixel, then measure mean IoU on the "
    "test split (default: generated shapes, offline). Datasets: shapes, camvid, cityscapes, sbd, ade20k.", None,
    base=[("dataset", Optional[str], typer.Option(None, help="shapes (default, offline), camvid, cityscapes, sbd, "
                                                             "ade20k."))
          if option[0] == "dataset" else option for option in _TRAINING_OPTIONS if option[0] in
          ("recipe", "dataset", "loss", "epochs", "seed", "lr", "batch_size", "device", "data_root")],
    extra=[("encoder", Optional[str], typer.Option(None, help="resnet34, efficientnet-b4, densenet201, "
                                                             "resnext50_32x4d (the paper's), resnet18 (default)."))])

