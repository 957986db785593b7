"""Network registry: ``build_model(arch, input_shape, num_classes)``.

The MNIST-scale networks follow the paper's Appendix B.1.3 and size themselves from the input, so
the same ``lenet`` runs on 28x28 MNIST and on 8x8 digits.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from hemcli.errors import unknown_name
from hemcli.models.small import ConvNet, LeNet, mlp

ARCHS: dict[str, Callable[[tuple[int, ...], int], nn.Module]] = {
    "mlp": mlp,
    "lenet": LeNet,
    "convnet": ConvNet,
}


def build_model(arch: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if arch not in ARCHS:
        raise unknown_name("arch", arch, ARCHS)
    return ARCHS[arch](tuple(input_shape), num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
