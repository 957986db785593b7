"""The commands that measure finished runs again from their checkpoints, evaluate and attack, and
``hem evaluate --weights``/``--model``, which measures a network trained elsewhere."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from hemcli.cli.options import (AttackBatchOpt, AttackSamplesOpt, AttackStrengthOpt, CorruptSamplesOpt, EvalHelp,
                                OodSamplesOpt, ProgressEveryOpt, QuietOpt, ScoresOpt, _flag_values,
                                _set_progress_every, app)
from hemcli.cli.output import _emit, _headline, _results_only
from hemcli.errors import HemError, Interrupted, Terminated

PathsArg = typer.Argument(..., help="Result files, or folders searched for them (a whole sweep).")
EvaluatePathsArg = typer.Argument(None, help="Result files, or folders searched for them (a whole sweep); or "
                                  "none, with --weights or --model.")
MeasureSetOpt = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                             help="Set an evaluation key, e.g. --set evaluation.accept=0.9 (repeatable).")
MeasureDeviceOpt = typer.Option(None, help="auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps (default: the run's).")
MeasureRootOpt = typer.Option(None, help="Data folder (default: the run's).")
WeightsOpt = typer.Option(None, "--weights", metavar="FILE", help="Measure a network trained elsewhere: its "
                          "state_dict, saved with torch.save(model.state_dict()) (with --arch or --model).")
ArchOpt = typer.Option(None, "--arch", metavar="A", help="The registry network the --weights are for (hem archs).")
ModelOpt = typer.Option(None, "--model", metavar="package.module:factory", help="Your own network: a function "
                        "returning an nn.Module, given num_classes= if it takes it; --weights optional.")
DatasetOpt = typer.Option(None, "--dataset", metavar="D", help="The dataset a --weights/--model network classifies.")
ExternalOutOpt = typer.Option(None, "--out", "-o", help="Folder for the result of a --weights/--model network "
                              "(default: results).")
ExternalOverwriteOpt = typer.Option(False, "--overwrite", help="Measure a --weights/--model network again over "
                                    "its existing result.")


@app.command()
def evaluate(
    paths: Optional[List[Path]] = EvaluatePathsArg,
    eval_: str = typer.Option("corrupt,ood,calibration", "--eval", metavar="LIST", help=EvalHelp),
    scores: Optional[str] = ScoresOpt,
    ood_samples: Optional[str] = OodSamplesOpt,
    corrupt_samples: Optional[str] = CorruptSamplesOpt,
    attack_samples: Optional[str] = AttackSamplesOpt,
    attack_batch_size: Optional[str] = AttackBatchOpt,
    attack_strength: Optional[str] = AttackStrengthOpt,
    device: Optional[str] = MeasureDeviceOpt,
    data_root: Optional[str] = MeasureRootOpt,
    set_: List[str] = MeasureSetOpt,
    quiet: bool = QuietOpt,
    progress_every: Optional[str] = ProgressEveryOpt,
    weights: Optional[Path] = WeightsOpt,
    arch: Optional[str] = ArchOpt,
    model: Optional[str] = ModelOpt,
    dataset: Optional[str] = DatasetOpt,
    out: Optional[Path] = ExternalOutOpt,
    overwrite: bool = ExternalOverwriteOpt,
):
    """Measure finished runs again from their checkpoints and add the metrics to their results; or,
    with --weights/--model, a network trained elsewhere, written as a result of its own."""
    _set_progress_every(progress_every)
    flags = _flag_values(eval=eval_, scores=scores, ood_samples=ood_samples, corrupt_samples=corrupt_samples,
                         attack_samples=attack_samples, attack_batch_size=attack_batch_size,
                         attack_strength=attack_strength, device=device, data_root=data_root)
    network = {"--weights": weights, "--arch": arch, "--model": model, "--dataset": dataset, "--out": out,
               "--overwrite": overwrite or None}
    if paths and any(value is not None for value in network.values()):
        given = [name for name, value in network.items() if value is not None]
        raise HemError(f"{', '.join(given)} measure a network trained elsewhere; result files are measured again "
                       "in place: give one or the other")
    if paths:
        _measure_again(paths, flags, set_, quiet)
    elif weights is None and model is None and arch is None:
        raise HemError("nothing to measure: give result files (or folders of them), or --weights FILE --arch A "
                       "--dataset D for a network trained elsewhere")
    else:
        _measure_external(weights, arch, model, dataset, flags, set_, out or Path("results"), overwrite, quiet)


@app.command()
def attack(
    paths: List[Path] = PathsArg,
    attack_samples: Optional[str] = AttackSamplesOpt,
    attack_batch_size: Optional[str] = AttackBatchOpt,
    attack_strength: Optional[str] = AttackStrengthOpt,
    scores: Optional[str] = ScoresOpt,
    device: Optional[str] = MeasureDeviceOpt,
    data_root: Optional[str] = MeasureRootOpt,
    set_: List[str] = MeasureSetOpt,
    quiet: bool = QuietOpt,
    progress_every: Optional[str] = ProgressEveryOpt,
):
    """AutoAttack DAR of finished runs (l-inf and l2), added to their results; resumes per batch."""
    _set_progress_every(progress_every)
    flags = _flag_values(eval="attack", scores=scores, attack_samples=attack_samples,
                         attack_batch_size=attack_batch_size, attack_strength=attack_strength, device=device,
                         data_root=data_root)
    _measure_again(paths, flags, set_, quiet)


def _measure_external(weights, arch, model, dataset, flags: dict, sets, out: Path, overwrite: bool,
                      quiet: bool) -> None:
    """Check everything (nothing is written on bad input), measure, write the result; its path on stdout."""
    from hemcli import recipes
    from hemcli.evaluation.external import SETTABLE
    from hemcli.tasks import evaluate_external

    overrides = dict(flags)
    for assignment in sets:
        key, value = recipes.parse_set(assignment)
        if key not in SETTABLE and not key.startswith("evaluation."):
            raise HemError(f"--set {key}: a network trained elsewhere takes {', '.join(SETTABLE)} and evaluation.* "
                           "keys")
        overrides[key] = value
    with _results_only():
        item = evaluate_external.plan(weights, arch, model, dataset, overrides, out, overwrite)
        try:
            result = evaluate_external.measure(item, quiet)
        except KeyboardInterrupt as stop:
            terminated = isinstance(stop, Terminated)
            raise Interrupted(f"{'terminated' if terminated else 'interrupted'}; no result written (run the same "
                              "command again: an attack goes on from its last finished batch)", terminated) from None
        if not quiet:
            shown = ", ".join(f"{k} {result['metrics'][k]:.2f}" for k in _headline(result))
            print(f"{shown}  ->  {item.path}", file=sys.stderr)
        _emit(str(item.path))


def _measure_again(paths, flags: dict, sets, quiet: bool) -> None:
    """Check every result first (nothing changes on bad input), then measure each; paths on stdout."""
    from hemcli import recipes
    from hemcli.tasks import evaluate as again

    overrides = dict(flags)
    for assignment in sets:
        key, value = recipes.parse_set(assignment)
        if key != "eval" and not key.startswith("evaluation."):
            raise HemError(f"--set {key}: only eval and evaluation.* keys can change for a finished run")
        overrides[key] = value
    names = overrides["eval"]
    with _results_only():
        items = again.plan(paths, overrides)
        cache = again.DataCache()
        again.check_all(items, cache)
        for item in items:
            try:
                result = again.measure(item, names, cache, quiet)
            except KeyboardInterrupt as stop:
                terminated = isinstance(stop, Terminated)
                raise Interrupted(f"{'terminated' if terminated else 'interrupted'}; {item.path} is unchanged (run "
                                  "the same command again: an attack goes on from its last finished batch)",
                                  terminated) from None
            if not quiet:
                shown = ", ".join(f"{k} {result['metrics'][k]:.2f}" for k in _headline(result))
                print(f"{shown}  ->  {item.path}", file=sys.stderr)
            _emit(str(item.path))  # each path as soon as it is measured: a pipe can start on it

