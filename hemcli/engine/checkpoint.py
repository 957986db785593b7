"""The per-epoch checkpoint of a training run: model, optimiser, schedule, RNG state and history,
written atomically and read weights-only. What makes two runs the same run is the caller's to say
(``same_run``): the engine knows recipes, not conditions."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from hemcli.errors import HemError
from hemcli.fileio import write_atomic

CHECKPOINT_FORMAT = "hem-checkpoint/1"
# What a hem checkpoint holds, and of which type; anything else is "not a hem checkpoint".
_CHECKPOINT_FIELDS = {"format": str, "epoch": int, "recipe": dict, "history": list, "model": dict,
                      "optimizer": dict, "scheduler": dict, "generator": torch.Tensor, "torch_rng": torch.Tensor}


def identical(saved: dict, recipe: dict) -> bool:
    """The strictest identity: the very same recipe (``runs.condition.same_run`` is what runs use)."""
    return saved == recipe


class Checkpointer:
    """Saves model, optimiser, schedule, RNG and history after each epoch, atomically; loads weights-only.
    ``same_run(saved recipe, recipe)`` says whether a checkpoint belongs to this run."""

    def __init__(self, path: Path, recipe: dict, same_run: Callable[[dict, dict], bool] = identical):
        self.path, self.recipe, self.same_run = path, recipe, same_run

    def save(self, epoch: int, model, optimizer, scheduler, generator, history: list) -> None:
        state = {"format": CHECKPOINT_FORMAT, "epoch": epoch, "recipe": self.recipe, "history": history,
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                 "torch_rng": torch.get_rng_state()}
        write_atomic(self.path, lambda handle: torch.save(state, handle), what="checkpoint")

    def load(self) -> dict | None:
        """The checkpoint's state, None when there is no file; a HemError for anything else."""
        if not self.path.exists():
            return None
        from hemcli.fileio import load_weights_only

        try:
            state = load_weights_only(self.path)  # a planted pickle builds nothing
        except OSError as err:
            raise self._unreadable(err.strerror or str(err)) from None
        except Exception:  # empty, truncated, another format, or a pickle that is not weights-only
            raise self._unreadable("not a hem checkpoint") from None
        if not (isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT
                and all(isinstance(state.get(key), kind) for key, kind in _CHECKPOINT_FIELDS.items())):
            raise self._unreadable("not a hem checkpoint")
        if not self.same_run(state["recipe"], self.recipe):
            raise HemError(f"checkpoint {self.path} was made with another recipe; "
                           "resume with the same options or pass --overwrite to start again")
        return state

    def restore(self, state: dict, model, optimizer, scheduler, generator) -> None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError):
            raise self._unreadable("not a hem checkpoint (it does not fit this model and optimiser)") from None

    def _unreadable(self, why: str) -> HemError:
        return HemError(f"cannot read checkpoint {self.path}: {why}; pass --overwrite to start again")
