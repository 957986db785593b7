"""The commands that print one table and train nothing: report (of results), losses, archs, datasets."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from hemcli.cli.options import app
from hemcli.cli.output import _emit, _results_only


@app.command()
def report(
    paths: List[Path] = typer.Argument(..., help="Result files or folders (searched recursively)."),
    format: str = typer.Option("github", "--format", "-f", help="github, latex, csv, json or html (a standalone "
                               "page; with --plot, the figures are in it too)."),
    metrics: Optional[str] = typer.Option(
        None, metavar="NAMES", help="Comma-separated metric columns, group names (clean, shots, corrupt, ood, dar, "
        "robust, attack, calibration, continual, segment, other), headline or all. Default: the headline metrics "
        "of each evaluation (every metric in csv and json)."),
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="FILE.png|pdf|svg",
                                        help="Also draw each loss's difference to CE with its 95% interval, one "
                                             "figure per metric group (FILE, FILE-<group>...)."),
):
    """Results as a table by condition: mean ± std over seeds, n, difference to the matching CE condition."""
    from hemcli.report import report as make_report

    with _results_only():
        text = make_report(paths, fmt=format, metrics=metrics, warn=lambda line: print(line, file=sys.stderr),
                           plot=plot)
    _emit(text)


@app.command()
def losses():
    """List the losses with their defaults: the built-in ones, and your own (entry points of group
    hemcli.losses, and package.module:NAME losses used in this process)."""
    from tabulate import tabulate

    from hemcli.losses import LOSSES
    from hemcli.losses.registry import load_entry_points

    unusable = load_entry_points()  # registers the entry points that load, so the rows below show them
    rows = [(name, ", ".join(f"{k}={_shown(v)}" for k, v in info.defaults.items()) or "-",
             "yes" if info.needs_class_counts else "", info.description, info.source)
            for name, info in LOSSES.items()]
    rows += [(name, "-", "", problem, source) for name, source, problem in unusable]
    _emit(tabulate(rows, headers=["loss", "defaults", "class counts", "description", "source"], tablefmt="github"))


@app.command()
def archs(dataset: str = typer.Option("cifar10", help="Size the networks for this dataset's images and classes.")):
    """List the networks with their parameter counts for a dataset (those that do not fit say why)."""
    from tabulate import tabulate

    from hemcli.data import dataset_info
    from hemcli.models import arch_table

    info = dataset_info(dataset)
    rows = [(name, f"{count:,}" if count is not None else "-", note)
            for name, count, note in arch_table(info.input_shape, info.num_classes)]
    shape = "x".join(map(str, info.input_shape))
    _emit(f"{info.name}: {shape} inputs, {info.num_classes} classes\n"
          + tabulate(rows, headers=["arch", "parameters", "description"], tablefmt="github",
                     colalign=("left", "right", "left")))


@app.command()
def datasets():
    """List the datasets with their image shape, class count and the files each needs under --data-root."""
    from tabulate import tabulate

    from hemcli.data import DATASETS

    rows = [(name, "x".join(map(str, info.input_shape)), info.num_classes,
             "disk (streamed)" if info.streamed else "memory", info.files) for name, info in DATASETS.items()]
    _emit(tabulate(rows, headers=["dataset", "images", "classes", "held in", "files under the data root"],
                   tablefmt="github"))


def _shown(value) -> str:
    """A default as a recipe would spell it: 0.00147911 rather than 0.0014791083881682072, null for None."""
    if value is None:
        return "null"
    return f"{value:g}" if isinstance(value, float) else str(value)
