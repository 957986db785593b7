"""The Typer ``app`` every command registers on, the options more than one command group takes, and
``_flag_values`` (flags as recipe keys), shared by the training and the measuring commands."""
from __future__ import annotations

import typer

from hemcli.errors import HemError

app = typer.Typer(
    name="hem",
    help="High error margin (HEM) loss and the evaluation of the paper that proposed it.",
    no_args_is_help=True,
    # Typer's --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    # Plain help: rendering it with rich imports ~50 ms of modules on every `hem --help`.
    rich_markup_mode=None,
)

OutOpt = typer.Option("results", "--out", "-o", help="Folder for result JSON files.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress output.")
EvalHelp = "Evaluations after training, comma-separated: clean, shots, corrupt, ood, attack, calibration."
ScoresOpt = typer.Option(None, metavar="LIST", help="Confidence scores for rejection and DAR: msp, mls, energy, gen.")
OodSamplesOpt = typer.Option(None, metavar="INT", help="Images per synthetic unknown set, at most per real one (10000).")
CorruptSamplesOpt = typer.Option(None, metavar="INT", help="At most this many images per corruption and severity.")
AttackSamplesOpt = typer.Option(None, metavar="INT", help="Test images attacked by AutoAttack (the paper: 10000).")
AttackBatchOpt = typer.Option(None, metavar="INT", help="Images per attack batch, the step an attack resumes at (500).")
AttackStrengthOpt = typer.Option(None, help="torchattacks (its step counts, as the paper ran) or official (AutoAttack's).")
ProgressEveryOpt = typer.Option(None, "--progress-every", metavar="SECONDS",
                                help="Where stderr is not a terminal (a log file): a progress line (batch, images/s, "
                                     "ETA) at most every SECONDS; 0: after every batch. Default 30.")


def _set_progress_every(text: str | None) -> None:
    """``--progress-every``, checked, as this process's interval between progress lines in a log."""
    import math

    from hemcli.progress import set_log_interval

    if text is None:
        return
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise HemError(f"--progress-every must be a number of seconds >= 0 (0: every batch), got {text!r}")
    set_log_interval(seconds)


def _flag_values(**flags) -> dict:
    """Flags as recipe keys; their values are read like --set values (as YAML) and checked by the
    recipe schema, so `--epochs abc` and `--set epochs=abc` fail the same way."""
    from hemcli.runs.spec import FLAG_KEYS, LIST_FLAGS, TEXT_FLAGS
    from hemcli.values import read_value

    values = {}
    for name, text in flags.items():
        if text is None:
            continue
        if name in LIST_FLAGS and not text.lstrip().startswith("["):
            values[FLAG_KEYS[name]] = [part.strip() for part in text.split(",")]
            continue
        try:
            value = text if name in TEXT_FLAGS else read_value(text)
        except HemError:
            value = text  # refused by the schema with the key's name: "must be a number, got '[1'"
        values[FLAG_KEYS[name]] = value
    return values
