"""``hem recipes`` (the packaged recipes) and ``hem --version``."""
from __future__ import annotations

from typing import Optional

import typer

from hemcli.cli.options import app
from hemcli.cli.output import _emit

# Which table of the paper each task's recipes reproduce
PAPER_TABLES = {"classify": "Table 3", "longtail": "Table 5", "continual": "Table 6", "segment": "Table 7"}
# Recipes the paper has no row of: hem's offline default, and Fashion-MNIST standing in for MNIST
NOT_IN_THE_PAPER = {"digits": "none: the offline default", "fashion-mnist": "{table}'s MNIST recipe, on Fashion-MNIST",
                    "split-fashion-mnist": "{table}'s SplitMNIST recipe, on Fashion-MNIST",
                    "permuted-fashion-mnist": "{table}'s PermutedMNIST recipe, on Fashion-MNIST",
                    "split-digits": "none: the offline default", "permuted-digits": "none: the offline default",
                    "shapes": "none: the offline default"}


def _settings(data: dict) -> str:
    optim, schedule = data.get("optim", {}), data.get("schedule", {})
    parts = [f"{optim.get('name', '')} {optim.get('lr', '')}".strip(), f"{data.get('epochs', '?')} epochs",
             f"batch {data.get('batch_size', '?')}"]
    if schedule.get("name") not in (None, "constant"):
        parts.append(schedule["name"])
    return ", ".join(part for part in parts if part)


@app.command()
def recipes(task: Optional[str] = typer.Argument(None, help="classify, longtail, continual or segment (default: all).")):
    """List the packaged recipes (the paper's settings), one line each: the name --recipe takes, what
    it trains, the paper's table and the main settings."""
    from tabulate import tabulate

    from hemcli.errors import unknown_name
    from hemcli.recipes import read_recipe
    from hemcli.recipes.packaged import packaged, packaged_names

    if task is not None and task not in PAPER_TABLES:
        raise unknown_name("task", task, PAPER_TABLES)
    rows = []
    for name in packaged_names(task):
        data, which = read_recipe(packaged(None, name)), name.split("/")[0]
        first = (data.get("benchmark") or data.get("dataset") or {}).get("name", "")
        second = {"segment": data.get("model", {}).get("encoder"), "continual": data.get("strategy", {}).get("name")
                  }.get(which, data.get("model", {}).get("arch"))
        paper = NOT_IN_THE_PAPER.get(first, "{table}").format(table=PAPER_TABLES[which])
        rows.append((name, first, second or "", paper, _settings(data)))
    headers = ["recipe", "dataset / benchmark", "arch / encoder / strategy", "paper", "settings"]
    _emit(tabulate(rows, headers=headers, tablefmt="github"))


def version_callback(value: bool) -> None:
    """``hem --version``: hem, torch and CUDA (torch imported only here)."""
    if not value:
        return
    import platform

    import torch

    from hemcli import __version__

    cuda = torch.version.cuda or "none"
    available = f", {torch.cuda.device_count()} GPU(s)" if torch.cuda.is_available() else ""
    _emit(f"hem {__version__} (torch {torch.__version__}, CUDA {cuda}{available}, Python {platform.python_version()})")
    raise typer.Exit()


@app.callback()
def options(version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                         help="Print the versions of hem, torch and CUDA, then exit.")):
    """High error margin (HEM) loss and the evaluation of the paper that proposed it."""
