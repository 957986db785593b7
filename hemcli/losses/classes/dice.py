"""The DICE loss: one value per batch, from sums over all its samples (and pixels)."""
from __future__ import annotations

from hemcli.losses import functional as LF
from hemcli.losses.classes.base import LossModule, documented


@documented
class DiceLoss(LossModule):
    """DICE: one minus the soft Dice overlap of the softmax and the one-hot targets, per class.

    loss = (1/C) sum_c [1 - 2 sum_b t_bc z_bc / sum_b (t_bc + z_bc)],   z_b = softmax(y_b)

    where b runs over every valid sample (and pixel) of the batch and t_b = onehot(l_b).
    Milletari et al. 2016, "V-Net"; HEM paper, Appendix A.4 (Eq. 7). Every class counts in the
    mean, as in the paper (segmentation_models_pytorch's DiceLoss skips classes absent from the
    batch). The sums make it one value for the whole batch: it has no per-sample losses, so
    ``reduction`` can only be 'mean'.
    """

    loss_name = "dice"
    REDUCTIONS = ("mean",)
    REDUCTION_NOTE = ("its sums run over the whole batch, so it has no per-sample value and 'mean' "
                      "is the only reduction")
    MEAN = "the mean over the C classes of the per-class losses above (a class absent from the batch counts too)"

    def loss(self, logits, targets):
        return LF.dice(logits, targets, self.ignore_index)
