"""The exceptions the command line turns into one line on stderr and an exit code.

``HemError``: bad input from the user (exit 2). Its subclasses end a run that was under way:
``RunFailed`` (the training itself failed, e.g. the loss became NaN; exit 1) and ``Interrupted``
(Ctrl-C, exit 130; SIGTERM, as Slurm preempts a job, exit 143). Anything else reaching the command line is a bug: ``hem: internal error``.
"""


class HemError(ValueError):
    """Bad input from the user: an unknown name, a malformed recipe, missing data, ...

    The message is one line that names the problem and, where there are any, the valid choices.
    """

    exit_code = 2
    prefix = "hem: error: "


class RunFailed(HemError):
    """The run started but could not finish (the loss diverged); what was kept is named."""

    exit_code = 1


class Interrupted(HemError):
    """Ctrl-C or SIGTERM during a run; the message says whether it can be resumed."""

    exit_code = 130
    prefix = "hem: "

    def __init__(self, message: str, terminated: bool = False):
        super().__init__(message)
        if terminated:  # 128 + SIGTERM, as a shell reports a process the signal ended
            self.exit_code = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is (``hemcli.cli`` installs the handler): it unwinds like
    Ctrl-C, so locks are released, temporary files removed and the checkpoint kept."""


def shown(value: object, spell=repr) -> str:
    """``value`` spelled by ``spell`` (repr; json.dumps for JSON), cut short enough for a one-line
    message: a 400-digit number becomes its first 24 characters and a count."""
    text = spell(value)
    return text if len(text) <= 40 else f"{text[:24]}... ({len(text)} characters)"


def unknown_name(kind: str, name: object, valid) -> HemError:
    """An error for a name that is not one of ``valid``, listing the valid ones."""
    choices = ", ".join(sorted(str(v) for v in valid))
    return HemError(f"unknown {kind} {name!r}; valid choices: {choices}")
