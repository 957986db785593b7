"""``hem sweep``: a grid of one task, run by a backend (local worker processes, Ray or Slurm)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from hemcli.cli.flags import FLAGS
from hemcli.cli.options import EvalHelp, OutOpt, QuietOpt, _flag_values, app
from hemcli.cli.output import _emit, _results_only
from hemcli.errors import HemError, Interrupted, RunFailed, Terminated


# The options of the sweep itself, after the task's flags: (parameter, type, typer option)
_SWEEP_OPTIONS = [
    ("eval_", Optional[str], typer.Option(None, "--eval", metavar="LIST",
                                          help=EvalHelp + " The same for every run (not an axis).")),
    ("set_", List[str], typer.Option([], "--set", "-s", metavar="KEY=A,B,...",
                                     help="A recipe key and its values, e.g. --set loss.params.M=500,2000 (repeatable).")),
    ("out", Path, OutOpt),
    ("backend", str, typer.Option("local", help="local (worker processes), ray or slurm.")),
    ("jobs", Optional[int], typer.Option(None, min=1, help="local: parallel runs (default: one per GPU, else 1).")),
    ("address", Optional[str], typer.Option(None, help="ray: HOST:PORT of a running cluster (default: a local "
                                                       "instance).")),
    ("cpus_per_run", Optional[int], typer.Option(None, min=1, help="CPU threads per run (local: default cores / "
                                                                   "jobs; ray, slurm: 1).")),
    ("gpus_per_run", Optional[int], typer.Option(None, min=0, help="ray, slurm: GPUs per run (default 1 where there "
                                                                   "are GPUs).")),
    ("slurm_partition", Optional[str], typer.Option(None, help="slurm: partition.")),
    ("slurm_time", Optional[str], typer.Option(None, help="slurm: time limit per run, minutes or [D-]HH:MM:SS "
                                                          "(default 24:00:00).")),
    ("slurm_array_parallelism", Optional[int], typer.Option(None, min=1, help="slurm: runs of the array at a time.")),
    ("slurm_cluster", str, typer.Option("slurm", help="slurm: slurm, or local (submitit's local executor, to try a "
                                                      "sweep).")),
    ("dry_run", bool, typer.Option(False, "--dry-run", help="Print each run as a hem command line; run nothing.")),
    ("quiet", bool, QuietOpt),
    ("deterministic", bool, typer.Option(False, "--deterministic", help="Deterministic kernels.")),
]


def _flag_option(flag):
    if flag.switch:
        return flag.name, bool, typer.Option(False, flag.option, help=f"{flag.help} (hem {', '.join(flag.tasks)})")
    if flag.axis:
        return flag.name, Optional[str], typer.Option(None, flag.option, metavar="LIST",
                                                      help=f"{flag.help} (hem {', '.join(flag.tasks)})")
    return flag.name, Optional[str], typer.Option(None, flag.option, metavar=flag.metavar or "VALUE",
                                                  help=f"{flag.help} The same for every run. (hem "
                                                       f"{', '.join(flag.tasks)})")


def sweep(task: str, recipe: Optional[Path], **values):
    """Run a grid of one task: every flag of hem TASK takes a comma list A,B,C or a range 0-4 (one run
    per value; LIST below), and --set KEY=A,B; finished runs are skipped."""
    with _results_only():
        text = _sweep(task, recipe, **values)
    if text:
        _emit(text)


def _register() -> None:
    import inspect

    parameters = [inspect.Parameter("task", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str,
                                    default=typer.Argument(..., metavar="TASK", help="The task to sweep: classify, "
                                                                     "longtail, continual or segment.")),
                  inspect.Parameter("recipe", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],
                                    default=typer.Option(None, "--recipe", "-r", metavar="RECIPE",
                                                         help="A packaged recipe or a recipe "
                                                         "YAML; a grid: block in it adds axes to the grid."))]
    parameters += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
                   for name, kind, option in [*map(_flag_option, FLAGS), *_SWEEP_OPTIONS]]
    sweep.__signature__ = inspect.Signature(parameters)
    app.command(name="sweep")(sweep)


_register()


def _task_flags(task: str, values: dict) -> tuple[dict, dict, list]:
    """The given flags of ``hem <task>``, split into axes (text, as --set A,B), values every run takes,
    and the --sets switches stand for; a flag of another task is a HemError naming whose it is."""
    axes, fixed, switches = {}, {}, []
    for flag in FLAGS:
        given = values.pop(flag.name)
        if given is None or given is False:
            continue
        if task not in flag.tasks:
            raise HemError(f"hem sweep {task} takes no {flag.option}: it is a flag of hem "
                           f"{' and hem '.join(flag.tasks)}")
        if flag.switch:
            switches.append(flag.switch)
        elif flag.axis:
            axes[flag.name] = given
        else:
            fixed.update(_flag_values(**{flag.name: given}))
    return axes, fixed, switches


def _sweep(task, recipe, eval_, set_, out, backend, jobs, address, cpus_per_run, gpus_per_run, slurm_partition,
           slurm_time, slurm_array_parallelism, slurm_cluster, dry_run, quiet, deterministic, **flag_values) -> str | None:
    """The sweep itself; returns what goes to stdout (the dry run's command lines, or the report)."""
    from hemcli.recipes import read_text_inputs

    read_text_inputs(recipe, set_, task)  # hostile YAML refused before any process imports torch
    from hemcli.runs.sweep.backends import SLURM_CLUSTERS, BackendOptions, make_backend
    from hemcli.runs.sweep.backends.local import start_workers_early

    if backend == "local" and not dry_run:
        start_workers_early()  # imports only: nothing runs before the whole grid is checked
    from hemcli.runs import sweep as sweeps

    if slurm_cluster not in SLURM_CLUSTERS:
        raise HemError(f"unknown --slurm-cluster {slurm_cluster!r}; valid choices: {', '.join(SLURM_CLUSTERS)}")
    flags, fixed, switches = _task_flags(task, flag_values)
    if eval_ is not None:
        set_ = [*set_, f"eval=[{eval_}]"]
    specs = sweeps.plan(task, recipe, flags, [*set_, *switches], out, deterministic, fixed)
    from hemcli.loggers import check_installed
    check_installed([name for spec in specs for name in spec.cfg["log"]["loggers"]])  # before any run starts
    options = BackendOptions(jobs, address, cpus_per_run, gpus_per_run, slurm_partition, slurm_time,
                             slurm_array_parallelism, slurm_cluster)
    runner = make_backend(backend, options, out)
    sweeps.validate(specs, out, load_data=backend == "local" and not dry_run)
    if dry_run:
        return "\n".join(spec.shell_command() for spec in specs)
    try:
        outcomes = sweeps.run(specs, runner, quiet)
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)
        raise Interrupted(f"{'terminated' if terminated else 'interrupted'}; run the same command again to go "
                          "on: finished runs are kept, interrupted ones resume from their checkpoints",
                          terminated) from None
    for line in sweeps.failure_summary(outcomes):
        print(line, file=sys.stderr)
    finished = [spec.path for spec in specs if spec.path.is_file()]
    failed = sum(outcome["status"] == "failed" for _, outcome in outcomes)
    table = None
    if finished:
        from hemcli.report import report as make_report
        table = make_report(finished, warn=lambda line: print(line, file=sys.stderr))
    if failed:
        if table:
            _emit(table)
        raise RunFailed(f"{failed} of {len(specs)} runs failed (listed above)")
    return table
