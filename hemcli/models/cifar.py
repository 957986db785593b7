"""The CIFAR-style residual networks of the paper's Table 3, written for small images.

All three take any number of input channels and any side of 16 or more (their last stage then
still works on a map of at least 2x2), and end in a global average pool, so 32x32 (CIFAR) and
64x64 (TinyImageNet) inputs give the same parameter count for the same number of classes.

- ``CifarResNet``: He et al. (2016a, §4.2): a 3x3 conv of 16 channels, three stages of ``n`` basic
  blocks (two 3x3 convs with BN) with 16, 32 and 64 channels and 32, 16, 8-pixel maps, then the
  classifier; 6n + 2 layers, so ``resnet32`` has n = 5. Shortcuts are option A (identity, with
  a stride-2 subsample and zero channels where the shape changes), which gives the paper's
  464,154 parameters; option B (1x1 conv + BN) would give 466,906.
- ``PreActResNet18``: He et al. (2016b): the pre-activation ResNet-18 (BN-ReLU before each conv,
  1x1 conv shortcut without BN where the shape changes, a final BN-ReLU), 64-512 channels.
- ``WideResNet``: Zagoruyko & Komodakis (2016): stages of 16k, 32k, 64k channels built from
  pre-activation blocks with optional dropout between the two convs; WRN-d-k has (d - 4) / 6
  blocks per stage.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MIN_SIDE = 16


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """A 3x3 convolution with 'same' padding and no bias (a BN follows or precedes it)."""
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def he_init(model: nn.Module) -> nn.Module:
    """He et al.'s initialisation (normal, fan-out, ReLU gain) for every conv; returns ``model``."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


class ZeroPadShortcut(nn.Module):
    """He et al.'s option-A shortcut: x subsampled by ``stride``, then ``extra`` zero channels
    appended (N, C, H, W) -> (N, C + extra, H / stride, W / stride). No parameters."""

    def __init__(self, extra: int, stride: int):
        super().__init__()
        self.extra, self.stride = extra, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


class BasicBlock(nn.Module):
    """relu(BN(conv(relu(BN(conv(x))))) + shortcut(x)), the original (post-activation) block."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = conv3x3(c_out, c_out), nn.BatchNorm2d(c_out)
        reshaped = stride != 1 or c_in != c_out
        self.shortcut = ZeroPadShortcut(c_out - c_in, stride) if reshaped else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class PreActBlock(nn.Module):
    """conv(drop(relu(BN(conv(relu(BN(x))))))) + shortcut: He et al. (2016b) and the wide-ResNet
    block. Where the shape changes the shortcut is a 1x1 conv of the activated input."""

    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), conv3x3(c_in, c_out, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), conv3x3(c_out, c_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        reshaped = stride != 1 or c_in != c_out
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False) if reshaped else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(act)
        out = self.conv1(act)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + skip


def stage(block, c_in: int, c_out: int, count: int, stride: int, **kw) -> nn.Sequential:
    """``count`` blocks; the first changes channels and stride, the rest keep them."""
    blocks = [block(c_in, c_out, stride, **kw)]
    blocks += [block(c_out, c_out, 1, **kw) for _ in range(count - 1)]
    return nn.Sequential(*blocks)


class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet of depth 6n + 2 (``blocks`` = n), widths 16/32/64, option A."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, blocks: int = 5,
                 widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        self.stem = nn.Sequential(conv3x3(input_shape[0], widths[0]), nn.BatchNorm2d(widths[0]), nn.ReLU())
        ins = (widths[0],) + widths[:-1]
        self.stages = nn.Sequential(*(stage(BasicBlock, i, o, blocks, 1 if k == 0 else 2)
                                      for k, (i, o) in enumerate(zip(ins, widths))))
        self.fc = nn.Linear(widths[-1], num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.stages(self.stem(x)).mean(dim=(2, 3)))


class PreActNet(nn.Module):
    """A pre-activation network: 3x3 stem conv, stages of ``PreActBlock``, BN-ReLU, global
    average pool, linear classifier. ``plan`` lists (channels, blocks, stride) per stage."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, stem: int,
                 plan: list[tuple[int, int, int]], dropout: float = 0.0):
        super().__init__()
        self.stem = conv3x3(input_shape[0], stem)
        stages, c_in = [], stem
        for c_out, count, stride in plan:
            stages.append(stage(PreActBlock, c_in, c_out, count, stride, dropout=dropout))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c_in)
        self.fc = nn.Linear(c_in, num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.stages(self.stem(x))))
        return self.fc(out.mean(dim=(2, 3)))


def resnet32(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """ResNet-32 for CIFAR (n = 5; 464,154 parameters with 10 classes)."""
    return CifarResNet(input_shape, num_classes, blocks=5)


def preact_resnet18(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Pre-activation ResNet-18: 64-channel stem, 2 blocks at each of 64/128/256/512 channels."""
    plan = [(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)]
    return PreActNet(input_shape, num_classes, 64, plan)


def wide_resnet(blocks: int, widen: int, dropout: float = 0.0):
    """A builder of WRN with ``blocks`` per stage and widening factor ``widen`` (16/32/64 x k)."""
    def build(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        plan = [(16 * widen, blocks, 1), (32 * widen, blocks, 2), (64 * widen, blocks, 2)]
        return PreActNet(input_shape, num_classes, 16, plan, dropout)
    return build
