"""What ``hem continual`` measures after each training experience (paper Table 6, Appendix B.3).

``test_accuracies`` gives one row of the accuracy matrix: the % correct on every experience's test
set, ``None`` where the experience's head does not exist yet. ``matrix_metrics`` reads the run's
metrics off the whole matrix (``hemcli.metrics.forgetting``): ``final_accuracy`` (on the union of
all test sets after the last experience, the paper's metric), ``last_experience_accuracy`` (the last
experience's own), ``average_forgetting`` and ``backward_transfer``.
"""
from __future__ import annotations

import torch

EVAL_BATCH = 1024  # test images per forward pass (also the strategy's eval_mb_size)


@torch.no_grad()
def test_accuracies(model, stream, device) -> list[float | None]:
    """% correct on each experience's test set, each sample through its task's head; None for an
    experience whose head does not exist yet (the task scenario's later experiences)."""
    from avalanche.models.utils import avalanche_forward

    model.eval()
    row = []
    for exp in stream.experiences:
        if not model.has_head(exp.task):
            row.append(None)
            continue
        correct = 0
        for start in range(0, len(exp.test_y), EVAL_BATCH):
            x = exp.test_x[start:start + EVAL_BATCH].to(device)
            logits = avalanche_forward(model, x, torch.full((len(x),), exp.task, device=device))
            correct += (logits.argmax(1).cpu() == exp.test_y[start:start + EVAL_BATCH]).sum().item()
        row.append(100.0 * correct / max(len(exp.test_y), 1))
    return row


def shown_row(row: list[float | None]) -> str:
    """A row of the matrix as the progress line shows it: "-" for an experience without a head yet."""
    return " ".join("-" if acc is None else f"{acc:.1f}" for acc in row)


def matrix_metrics(matrix: list[list[float | None]], test_sizes: list[int]) -> dict[str, float]:
    """The result's metrics from the accuracy matrix (row i: after training experience i); a metric
    the matrix cannot give (forgetting after one experience) is left out."""
    from hemcli.metrics.forgetting import average_forgetting, backward_transfer, final_accuracy

    metrics = {"final_accuracy": final_accuracy(matrix, test_sizes), "last_experience_accuracy": matrix[-1][-1],
               "average_forgetting": average_forgetting(matrix), "backward_transfer": backward_transfer(matrix)}
    return {key: value for key, value in metrics.items() if value is not None}


def experience_row(record, test_sizes: list[int], done: int) -> dict:
    """What the experiment loggers get after experience ``done`` (1-based) of ``record`` (hem's
    ``Record``): the last epoch's training loss, the accuracy on every experience's test set (None
    where its head does not exist yet), on all the experiences seen so far (weighted by their test sizes, as
    ``final_accuracy`` is at the end), the forgetting and backward transfer so far, and the
    experience's seconds."""
    from hemcli.metrics.forgetting import average_forgetting, backward_transfer, final_accuracy

    square = [row[:done] for row in record.matrix[:done]]  # the experiences seen so far
    losses = [h["train_loss"] for h in record.history if h["experience"] == done - 1]
    row = {"experience": done, "train_loss": losses[-1] if losses else None}
    row.update({f"test_accuracy/exp{j + 1}": acc for j, acc in enumerate(record.matrix[done - 1])})  # None: no head
    row.update({"seen_accuracy": final_accuracy(square, test_sizes[:done]),
                "average_forgetting": average_forgetting(square), "backward_transfer": backward_transfer(square),
                "seconds": record.seconds[done - 1] if done <= len(record.seconds) else None})
    return row
