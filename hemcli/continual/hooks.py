"""Small Avalanche plugins that ``hem continual`` adds to every strategy (Avalanche's LwFPlugin style):

* ``CountedLoss``: before each training experience, the registry loss is built again from the class
  counts of the training samples of every experience seen so far (this one included), per output
  unit of a head; a unit none of them has yet counts as 1, the least a class can have. So ``la``'s
  prior, ``hem``'s per-class margins and ``hem-``'s shared margin grow with what the learner has seen.
* ``Record``: what the run has measured so far (the accuracy matrix, the epochs' history, each
  experience's seconds); hem's continual checkpoint (``hemcli.continual.checkpoint``) carries it.
* ``ProgressLine``: one line per epoch on stderr, experience / epoch / loss / ETA.
"""
from __future__ import annotations

import time

import torch
from avalanche.core import SupervisedPlugin

from hemcli.progress import clock, note


class CountedLoss(SupervisedPlugin):
    def __init__(self, name: str, params: dict, outputs: int, device):
        super().__init__()
        self.name, self.params, self.device = name, dict(params), device
        self.seen = torch.zeros(outputs, dtype=torch.int64)

    def counts(self) -> list[int]:
        return self.seen.clamp(min=1).tolist()

    def before_training_exp(self, strategy, **kwargs):
        from hemcli.losses import build_loss

        targets = torch.as_tensor(list(strategy.experience.dataset.targets))
        self.seen += torch.bincount(targets, minlength=len(self.seen))[:len(self.seen)]
        strategy._criterion = build_loss(self.name, num_classes=len(self.seen), class_counts=self.counts(),
                                         **self.params).to(self.device)


class Record(SupervisedPlugin):
    def __init__(self, recipe: dict):
        super().__init__()
        self.recipe = recipe
        self.matrix: list[list[float]] = []
        self.history: list[dict] = []
        self.seconds: list[float] = []  # each experience's training time


class ProgressLine(SupervisedPlugin):
    def __init__(self, record: Record, experiences: int, epochs: int, quiet: bool):
        super().__init__()
        self.record, self.experiences, self.epochs, self.quiet = record, experiences, epochs, quiet
        self._losses, self._tick, self._experience = [], 0.0, 0

    def before_training_exp(self, strategy, **kwargs):
        self._experience = strategy.experience.current_experience

    def before_training_epoch(self, strategy, **kwargs):
        self._losses, self._tick = [], time.perf_counter()

    def after_training_iteration(self, strategy, **kwargs):
        self._losses.append(strategy.loss.detach())

    def after_training_epoch(self, strategy, **kwargs):
        seconds = time.perf_counter() - self._tick
        loss = torch.stack(self._losses).float().mean().item() if self._losses else float("nan")
        epoch = len([h for h in self.record.history if h["experience"] == self._experience]) + 1
        self.record.history.append({"experience": self._experience, "epoch": epoch, "train_loss": loss,
                                    "seconds": seconds})
        times = [h["seconds"] for h in self.record.history]
        left = self.experiences * self.epochs - len(self.record.history)
        if not self.quiet:
            note(f"experience {self._experience + 1}/{self.experiences}  epoch {epoch}/{self.epochs}  "
                 f"loss {loss:.4g}  {seconds:.2f}s  ETA {clock(sum(times) / len(times) * max(left, 0))}")
