"""Logits and accuracy of a trained network on images held in memory, in eval mode, batch by batch."""
from __future__ import annotations

import torch

from hemcli.engine.batches import Shard, to_unit
from hemcli.engine.distributed import sum_over_ranks


@torch.no_grad()
def predict_logits(model, x: torch.Tensor, dm, batch_size: int = 1024) -> torch.Tensor:
    """Logits of images ``x`` (float in [0, 1], or uint8), ``batch_size`` at a time, in eval mode."""
    model.eval()
    outs = []
    for start in range(0, len(x), batch_size):
        with dm.autocast():
            outs.append(model(dm.prepare_input(to_unit(x[start:start + batch_size]))).float())
    return torch.cat(outs)


def accuracy(model, x: torch.Tensor, y: torch.Tensor, dm, shard: Shard = Shard()) -> float:
    """% correct, from the integer count (a float32 mean would print 89.73999619 for 8974 / 10000).
    Each rank of a data-parallel run predicts its ``shard`` of the images; the counts are added."""
    start, end = shard.bounds(len(y))
    correct = torch.zeros((), device=dm.device)
    if end > start:
        correct = (predict_logits(model, x[start:end], dm).argmax(1) == y[start:end]).sum()
    return 100.0 * sum_over_ranks(correct.double()).item() / len(y)

