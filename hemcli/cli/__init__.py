"""The ``hem`` command line. Commands stay thin: resolve the recipe, call the task's ``run``, write.

Only typer is imported at start-up; torch and every task import inside the command that needs
them, so ``hem --help`` stays fast. Bad input ends with one line on stderr and exit code 2.

One module per concern: ``options`` (the Typer ``app``, shared options), ``output`` (stdout, stderr,
SIGTERM), and the command groups ``train``, ``sweep``, ``measure``, ``tables``, imported below in
the order ``hem --help`` lists their commands.
"""
from __future__ import annotations

import os
import sys

from hemcli.cli.options import app
from hemcli.cli.output import _StdoutClosed, _click_classes, _guard_streams, _one_line, _sigterm_unwinds
from hemcli.errors import HemError, Terminated

# Each command group registers its commands on `app` as it is imported: this order is `hem --help`'s.
# isort: off
from hemcli.cli import train  # noqa: F401
from hemcli.cli import sweep  # noqa: F401
from hemcli.cli import measure  # noqa: F401
from hemcli.cli import tables  # noqa: F401
from hemcli.cli import catalog  # noqa: F401
# isort: on

__all__ = ["app", "entry", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point: every error becomes one line on stderr with its exit code, never a traceback.

    HemError: bad input (2), or a run that failed (1) or was interrupted (130). Anything else is a
    bug in hem: one line saying so (exit 1), and the traceback with HEM_DEBUG=1.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with _sigterm_unwinds():
            code = app(args=args or ["--help"], prog_name="hem", standalone_mode=False)
    except HemError as err:
        print(f"{err.prefix}{_one_line(err)}", file=sys.stderr)
        return err.exit_code
    except _click_classes("ClickException") as err:
        print(f"hem: error: {_one_line(err.format_message())}", file=sys.stderr)
        return err.exit_code
    except (*_click_classes("Abort"), KeyboardInterrupt) as err:
        # click turns a KeyboardInterrupt outside a run into Abort, the cause kept
        code = 143 if isinstance(err, Terminated) or isinstance(err.__cause__, Terminated) else 130
    except _StdoutClosed:
        return 141  # as if killed by SIGPIPE, what a C tool in the same pipe would report
    except Exception as err:  # the safety net: a bug must still end in one line
        if os.environ.get("HEM_DEBUG"):
            raise
        print(f"hem: internal error: {type(err).__name__}: {_one_line(err)} "
              "(HEM_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    if code in (130, 143):  # typer turns Ctrl-C outside a run into Exit(130), silently
        print(f"hem: {'interrupted' if code == 130 else 'terminated'}", file=sys.stderr)
    return code if isinstance(code, int) else 0


def entry() -> None:
    _guard_streams()
    sys.exit(main())
