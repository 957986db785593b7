"""The commands that measure finished runs again from their checkpoints: evaluate and attack."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from hemcli.cli.options import (AttackBatchOpt, AttackSamplesOpt, AttackStrengthOpt, CorruptSamplesOpt, EvalHelp,
                                OodSamplesOpt, QuietOpt, ScoresOpt, _flag_values, app)
from hemcli.cli.output import _emit, _headline, _results_only
from hemcli.errors import HemError, Interrupted, Terminated

PathsArg = typer.Argument(..., help="Result files, or folders searched for them (a whole sweep).")
MeasureSetOpt = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                             help="Set an evaluation key, e.g. --set evaluation.accept=0.9 (repeatable).")
MeasureDeviceOpt = typer.Option(None, help="auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps (default: the run's).")
MeasureRootOpt = typer.Option(None, help="Data folder (default: the run's).")


@app.command()
def evaluate(
    paths: List[Path] = PathsArg,
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
):
    """Measure finished runs again from their checkpoints and add the metrics to their results."""
    flags = _flag_values(eval=eval_, scores=scores, ood_samples=ood_samples, corrupt_samples=corrupt_samples,
                         attack_samples=attack_samples, attack_batch_size=attack_batch_size,
                         attack_strength=attack_strength, device=device, data_root=data_root)
    _measure_again(paths, flags, set_, quiet)


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
):
    """AutoAttack DAR of finished runs (l-inf and l2), added to their results; resumes per batch."""
    flags = _flag_values(eval="attack", scores=scores, attack_samples=attack_samples,
                         attack_batch_size=attack_batch_size, attack_strength=attack_strength, device=device,
                         data_root=data_root)
    _measure_again(paths, flags, set_, quiet)


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

