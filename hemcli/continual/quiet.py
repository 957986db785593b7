"""Avalanche kept quiet unless the recipe says ``verbose``: its import without the QP-solver warning,
its deprecation notices hidden while it trains, and no loggers of its own.

Nothing here imports avalanche at the top: ``import_avalanche`` is where a ``hem continual`` run
first imports it, so ``hem --help`` and the other tasks never do.
"""
from __future__ import annotations

import contextlib
import warnings


def import_avalanche(verbose: bool = False) -> None:
    """Import avalanche's training package, without its warning that no QP solver (for GEM) is installed."""
    with warnings.catch_warnings():
        if not verbose:
            warnings.filterwarnings("ignore", message="no QP solver found")
        import avalanche.training  # noqa: F401
    if not verbose:  # a strategy without loggers says so at every build
        warnings.filterwarnings("ignore", message="No loggers specified")


@contextlib.contextmanager
def deprecations_hidden(verbose: bool):
    """Avalanche's own deprecation notices (its replay buffer calls a method 0.6 deprecates, every
    experience) hidden unless ``verbose``. Its decorator puts a "once" filter first before warning, so
    a filter cannot hide them: the display is replaced instead, for the block only."""
    with warnings.catch_warnings():
        if not verbose:
            show = warnings.showwarning

            def shown_unless_deprecation(message, category, *args, **kwargs):
                if not issubclass(category, DeprecationWarning):
                    show(message, category, *args, **kwargs)
            warnings.showwarning = shown_unless_deprecation
        yield


def evaluator(verbose: bool):
    """A strategy's ``evaluator``: none (no Avalanche logging) unless ``verbose``, then Avalanche's
    default, an interactive logger, whose prints ``hem continual`` sends to stderr with the rest of
    stdout."""
    if not verbose:
        return None
    from avalanche.training.plugins.evaluation import default_evaluator
    return default_evaluator()
