"""The ``hem`` command line. Commands stay thin: resolve the recipe, call the task's ``run``, write.

Only typer is imported at start-up; torch and every task import inside the command that needs
them, so ``hem --help`` stays fast. Bad input ends with one line on stderr and exit code 2.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from hemcli.errors import HemError, Interrupted

app = typer.Typer(
    name="hem",
    help="High error margin (HEM) loss and the evaluation of the paper that proposed it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rendering it with rich imports ~50 ms of modules on every `hem --help`.
    rich_markup_mode=None,
)

# Flags are shorthand for recipe keys; their values are read like --set values (as YAML) and
# checked by the recipe schema, so `--epochs abc` and `--set epochs=abc` fail the same way.
_FLAG_KEYS = {"dataset": "dataset.name", "arch": "model.arch", "loss": "loss.name", "epochs": "epochs",
              "seed": "seed", "lr": "optim.lr", "batch_size": "batch_size", "device": "device",
              "data_root": "dataset.root"}

RecipeOpt = typer.Option(None, "--recipe", "-r", help="Recipe YAML; flags and --set override it.")
SetOpt = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                      help="Set any recipe key, e.g. --set optim.lr=0.05 or --set loss.params.M=1000 (repeatable).")
OutOpt = typer.Option("results", "--out", "-o", help="Folder for result JSON files.")
OverwriteOpt = typer.Option(False, "--overwrite", help="Replace an existing result (and its checkpoint).")
ResumeOpt = typer.Option(False, "--resume", help="Continue an interrupted run from its checkpoint.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress output.")


_TEXT_FLAGS = ("dataset", "arch", "loss", "device", "data_root")  # names and paths stay strings


def _flag_values(**flags) -> dict:
    from hemcli.values import read_value

    values = {}
    for name, text in flags.items():
        if text is None:
            continue
        try:
            value = text if name in _TEXT_FLAGS else read_value(text)
        except HemError:
            value = text  # refused by the schema with the key's name: "must be a number, got '[1'"
        values[_FLAG_KEYS[name]] = value
    return values


def _train_task(task, recipe, flags: dict, sets, out, overwrite, resume, quiet, deterministic) -> None:
    """Shared by every training command: every check, then lock, run, write atomically, print the path."""
    from hemcli import recipes
    from hemcli.runs.files import write_json_atomic
    from hemcli.runs.lock import RunLock
    from hemcli.runs.paths import check_output, checkpoint_path, result_path

    if deterministic:
        sets = [*sets, "deterministic=true"]
    cfg = recipes.resolve(task.schema(), task.schema()["task"].default, recipe, flags, sets)
    path = result_path(out, cfg)
    checkpoint = checkpoint_path(path)
    check_output(path, overwrite, resume)
    prepared = task.setup(cfg)
    try:
        with RunLock(path):
            check_output(path, overwrite, resume)  # again: a run on this path may have finished meanwhile
            if overwrite and not resume:
                checkpoint.unlink(missing_ok=True)
            result = task.run(cfg, checkpoint=checkpoint, resume=resume, quiet=quiet, prepared=prepared)
            write_json_atomic(path, result)
    except KeyboardInterrupt:
        kept = (f"continue with --resume (checkpoint {checkpoint})" if checkpoint.is_file()
                else "no checkpoint was written yet")
        raise Interrupted(f"interrupted; {kept}") from None
    if not quiet:
        shown = ", ".join(f"{k} {v:.2f}" for k, v in result["metrics"].items())
        print(f"{shown}  ->  {path}", file=sys.stderr)
    _emit(str(path))


@app.command()
def classify(
    recipe: Optional[Path] = RecipeOpt,
    dataset: Optional[str] = typer.Option(None, help="digits (default, offline), mnist, fashion-mnist."),
    arch: Optional[str] = typer.Option(None, help="mlp, lenet (default), convnet."),
    loss: Optional[str] = typer.Option(None, help="Loss name; `hem losses` lists them."),
    epochs: Optional[str] = typer.Option(None, metavar="INT", help="Training epochs."),
    seed: Optional[str] = typer.Option(None, metavar="INT", help="Seed."),
    lr: Optional[str] = typer.Option(None, metavar="FLOAT", help="Learning rate."),
    batch_size: Optional[str] = typer.Option(None, metavar="INT", help="Batch size."),
    device: Optional[str] = typer.Option(None, help="auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps."),
    data_root: Optional[str] = typer.Option(None, help="Data folder (default $HEM_DATA, else ./data)."),
    set_: List[str] = SetOpt,
    out: Path = OutOpt,
    overwrite: bool = OverwriteOpt,
    resume: bool = ResumeOpt,
    quiet: bool = QuietOpt,
    deterministic: bool = typer.Option(False, "--deterministic", help="Deterministic kernels."),
):
    """Train a classifier with a loss and measure clean test accuracy (default: digits, offline)."""
    from hemcli.tasks import classify as task

    flags = _flag_values(dataset=dataset, arch=arch, loss=loss, epochs=epochs, seed=seed, lr=lr,
                         batch_size=batch_size, device=device, data_root=data_root)
    _train_task(task, recipe, flags, set_, out, overwrite, resume, quiet, deterministic)


@app.command()
def report(
    paths: List[Path] = typer.Argument(..., help="Result files or folders (searched recursively)."),
    format: str = typer.Option("github", "--format", "-f", help="github, latex, csv or json."),
    metrics: Optional[str] = typer.Option(None, help="Comma-separated metric columns to show."),
):
    """Turn result files into a table: mean ± std over seeds, run count, difference to CE."""
    from hemcli.report import report as make_report

    _emit(make_report(paths, fmt=format, metrics=metrics, warn=lambda line: print(line, file=sys.stderr)))


@app.command()
def losses():
    """List the losses of the registry with their defaults."""
    from tabulate import tabulate

    from hemcli.losses import LOSSES

    rows = [(name, ", ".join(f"{k}={_shown(v)}" for k, v in info.defaults.items()) or "-",
             "yes" if info.needs_class_counts else "", info.description) for name, info in LOSSES.items()]
    _emit(tabulate(rows, headers=["loss", "defaults", "class counts", "description"], tablefmt="github"))


def _shown(value) -> str:
    """A default as a recipe would spell it: 0.00147911 rather than 0.0014791083881682072, null for None."""
    if value is None:
        return "null"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _click_classes(name: str) -> tuple[type, ...]:
    """``name`` from typer's vendored click (typer >= 0.20) and from click itself (older typer)."""
    found = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


class _StdoutClosed(Exception):
    """The reader of our stdout went away (``hem report ... | head``)."""


def _emit(text: str) -> None:
    """Machine-readable output to stdout; a full disk or a closed pipe is handled, not a traceback."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except OSError as err:
        _discard_stdout()
        if isinstance(err, BrokenPipeError):
            raise _StdoutClosed from None
        raise HemError(f"cannot write the output: {err.strerror or err}") from None


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test's capture)
        pass


def _one_line(text: object) -> str:
    return " ".join(str(text).split("\n"))


def main(argv: list[str] | None = None) -> int:
    """Entry point: every error becomes one line on stderr with its exit code, never a traceback.

    HemError: bad input (2), or a run that failed (1) or was interrupted (130). Anything else is a
    bug in hem: one line saying so (exit 1), and the traceback with HEM_DEBUG=1.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = app(args=args or ["--help"], prog_name="hem", standalone_mode=False)
    except HemError as err:
        print(f"{err.prefix}{_one_line(err)}", file=sys.stderr)
        return err.exit_code
    except _click_classes("ClickException") as err:
        print(f"hem: error: {_one_line(err.format_message())}", file=sys.stderr)
        return err.exit_code
    except (*_click_classes("Abort"), KeyboardInterrupt):
        code = 130
    except _StdoutClosed:
        return 141  # as if killed by SIGPIPE, what a C tool in the same pipe would report
    except Exception as err:  # the safety net: a bug must still end in one line
        if os.environ.get("HEM_DEBUG"):
            raise
        print(f"hem: internal error: {type(err).__name__}: {_one_line(err)} "
              "(HEM_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    if code == 130:  # typer turns Ctrl-C outside a run into Exit(130), silently
        print("hem: interrupted", file=sys.stderr)
    return code if isinstance(code, int) else 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
