"""Target handling shared by the losses."""
from __future__ import annotations

import torch


def may_hold_ignored(targets: torch.Tensor, ignore_index: int) -> bool:
    """False only when no target is ``ignore_index``, which lets a loss take its plain, faster path.

    Checked on CPU only, where reading the answer costs one small op (the training loop's common
    batch of a few dozen samples is dominated by such ops); on an accelerator the check would cost
    a host sync, so there every batch takes the path that handles ignored samples.
    """
    return targets.device.type != "cpu" or bool((targets == ignore_index).any())
