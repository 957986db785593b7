"""``hem sweep``: a grid of one task, run by a backend (local worker processes, Ray or Slurm)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from hemcli.cli.options import EvalHelp, OutOpt, QuietOpt, app
from hemcli.cli.output import _emit, _results_only
from hemcli.errors import HemError, Interrupted, RunFailed, Terminated


@app.command(context_settings={"help_option_names": ["--help", "-h"]})
def sweep(
    task: str = typer.Argument(..., help="The task to sweep: classify, longtail, continual or segment."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", "-r",
                                          help="Recipe YAML; a grid: block in it adds axes to the grid."),
    dataset: Optional[str] = typer.Option(None, metavar="LIST", help="Datasets, e.g. digits,fashion-mnist."),
    arch: Optional[str] = typer.Option(None, metavar="LIST", help="Networks, e.g. mlp,lenet."),
    loss: Optional[str] = typer.Option(None, metavar="LIST", help="Losses, e.g. ce,hem."),
    epochs: Optional[str] = typer.Option(None, metavar="LIST", help="Epochs, e.g. 10,20."),
    seed: Optional[str] = typer.Option(None, metavar="LIST", help="Seeds, e.g. 0-4 (0 to 4) or 0,3,7."),
    lr: Optional[str] = typer.Option(None, metavar="LIST", help="Learning rates, e.g. 0.1,0.01."),
    batch_size: Optional[str] = typer.Option(None, metavar="LIST", help="Batch sizes, e.g. 64,128."),
    device: Optional[str] = typer.Option(None, metavar="LIST", help="Device of every run (see hem classify)."),
    data_root: Optional[str] = typer.Option(None, help="Data folder."),
    set_: List[str] = typer.Option([], "--set", "-s", metavar="KEY=A,B,...",
                                   help="A recipe key and its values, e.g. --set loss.params.M=500,2000 (repeatable)."),
    out: Path = OutOpt,
    backend: str = typer.Option("local", help="local (worker processes), ray or slurm."),
    jobs: Optional[int] = typer.Option(None, min=1, help="local: parallel runs (default: one per GPU, else 1)."),
    address: Optional[str] = typer.Option(None, help="ray: HOST:PORT of a running cluster (default: a local instance)."),
    cpus_per_run: Optional[int] = typer.Option(None, min=1, help="CPU threads per run (local: default cores / jobs; ray, slurm: 1)."),
    gpus_per_run: Optional[int] = typer.Option(None, min=0, help="ray, slurm: GPUs per run (default 1 where there are GPUs)."),
    slurm_partition: Optional[str] = typer.Option(None, help="slurm: partition."),
    slurm_time: Optional[str] = typer.Option(None, help="slurm: time limit per run, minutes or [D-]HH:MM:SS (default 24:00:00)."),
    slurm_array_parallelism: Optional[int] = typer.Option(None, min=1, help="slurm: runs of the array at a time."),
    slurm_cluster: str = typer.Option("slurm", help="slurm: slurm, or local (submitit's local executor, to try a sweep)."),
    eval_: Optional[str] = typer.Option(None, "--eval", metavar="LIST",
                                        help=EvalHelp + " The same for every run (not an axis)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print each run as a hem command line; run nothing."),
    quiet: bool = QuietOpt,
    deterministic: bool = typer.Option(False, "--deterministic", help="Deterministic kernels."),
):
    """Run a grid of one task: every list flag and --set takes A,B,C; finished runs are skipped."""
    with _results_only():
        text = _sweep(task, recipe, dataset, arch, loss, epochs, seed, lr, batch_size, device, data_root, set_, out,
                      backend, jobs, address, cpus_per_run, gpus_per_run, slurm_partition, slurm_time,
                      slurm_array_parallelism, slurm_cluster, eval_, dry_run, quiet, deterministic)
    if text:
        _emit(text)


def _sweep(task, recipe, dataset, arch, loss, epochs, seed, lr, batch_size, device, data_root, set_, out, backend,
           jobs, address, cpus_per_run, gpus_per_run, slurm_partition, slurm_time, slurm_array_parallelism,
           slurm_cluster, eval_, dry_run, quiet, deterministic) -> str | None:
    """The sweep itself; returns what goes to stdout (the dry run's command lines, or the report)."""
    from hemcli.recipes import read_text_inputs

    read_text_inputs(recipe, set_)  # hostile YAML refused before any process imports torch
    from hemcli.runs.sweep.backends import SLURM_CLUSTERS, BackendOptions, make_backend
    from hemcli.runs.sweep.backends.local import start_workers_early

    if backend == "local" and not dry_run:
        start_workers_early()  # imports only: nothing runs before the whole grid is checked
    from hemcli.runs import sweep as sweeps

    if slurm_cluster not in SLURM_CLUSTERS:
        raise HemError(f"unknown --slurm-cluster {slurm_cluster!r}; valid choices: {', '.join(SLURM_CLUSTERS)}")
    flags = {"dataset": dataset, "arch": arch, "loss": loss, "epochs": epochs, "seed": seed, "lr": lr,
             "batch_size": batch_size, "device": device, "data_root": data_root}
    if eval_ is not None:
        set_ = [*set_, f"eval=[{eval_}]"]
    specs = sweeps.plan(task, recipe, flags, set_, out, deterministic)
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
