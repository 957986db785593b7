"""Network registry: ``build_model(arch, input_shape, num_classes, pretrained=False)``.

``ARCHS`` maps each name to a frozen ``ArchInfo`` record: its builder
``(input_shape, num_classes) -> nn.Module``, a description, the input sizes it takes and, for the
torchvision-backed ones that have ImageNet weights, torchvision's model name. ``arch_table``
lists every architecture with its parameter count for one input shape and class count (the
rows of ``hem archs --dataset D``).

The MNIST-scale networks follow the paper's Appendix B.1.3 and size themselves from the input, so
the same ``lenet`` runs on 28x28 MNIST and on 8x8 digits; the others are the networks of the
paper's Tables 3 and 5 (see ``hemcli.models.cifar`` and ``hemcli.models.imagenet``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from hemcli.errors import HemError, unknown_name
from hemcli.models import cifar, imagenet
from hemcli.models.small import ConvNet, LeNet, mlp


@dataclass(frozen=True)
class ArchInfo:
    """One architecture: ``builder(input_shape, num_classes) -> nn.Module``, a one-line
    ``description``, the ``input_sizes`` it takes in words, the smallest image side it takes
    (``min_side``) or the one square side it needs (``side``), and torchvision's model name
    where torchvision has ImageNet weights for it (``weights``, for ``pretrained=True``)."""

    name: str
    builder: Callable[[tuple[int, ...], int], nn.Module]
    description: str
    input_sizes: str
    min_side: int = 1
    side: int | None = None
    weights: str | None = None

    def __call__(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """The network for (C, H, W) inputs and ``num_classes`` logits (no fit check)."""
        return self.builder(tuple(input_shape), num_classes)

    def misfit(self, input_shape: tuple[int, ...]) -> str | None:
        """Why this architecture does not take (C, H, W) inputs, or None when it does."""
        h, w = input_shape[-2:]
        if (self.side is not None and (h, w) != (self.side, self.side)) or min(h, w) < self.min_side:
            return f"arch {self.name!r} does not take {h}x{w} inputs; it takes {self.input_sizes}"
        return None


_SMALL = f"sides of {cifar.MIN_SIDE} or more"
_STEMS = (f"sides of {cifar.MIN_SIDE} or more (small-image stem below {imagenet.SMALL_STEM_BELOW}, "
          f"ImageNet stem from {imagenet.SMALL_STEM_BELOW})")


def _wrn(depth: int, widen: int, blocks: int) -> ArchInfo:
    """Zagoruyko & Komodakis' WRN-depth-widen with ``blocks`` pre-activation blocks per stage."""
    return ArchInfo(f"wrn{depth}-{widen}", cifar.wide_resnet(blocks, widen),
                    f"wide ResNet {depth}-{widen}: {blocks} blocks per stage of {16 * widen}/"
                    f"{32 * widen}/{64 * widen} channels, dropout 0", _SMALL, cifar.MIN_SIDE)


_RECORDS = [
    ArchInfo("mlp", mlp, "MLP, three hidden layers of 200 ReLU units", "any size"),
    ArchInfo("lenet", LeNet, "LeNet, two 5x5 convs of 16 channels, 50-unit hidden layer",
             "sides of 4 or more", 4),
    ArchInfo("convnet", ConvNet, "five 3x3 convs of 32 channels, average pooling, no normalisation",
             "any size"),
    ArchInfo("resnet32", cifar.resnet32, "He et al.'s CIFAR ResNet-32 (5 blocks per stage, "
             "16/32/64 channels, option-A shortcuts)", _SMALL, cifar.MIN_SIDE),
    ArchInfo("preact-resnet18", cifar.preact_resnet18, "pre-activation ResNet-18, small-image stem",
             _SMALL, cifar.MIN_SIDE),
    _wrn(22, 10, 3),
    _wrn(28, 10, 4),
    # WRN-20-10 is not of the form 6n + 4; 20 = 6n + 2 counts the layers without the three 1x1
    # shortcut convs (as e.g. imgclsmob's wrn20_10 does), which gives n = 3 blocks per stage.
    _wrn(20, 10, 3),
    ArchInfo("resnet18", imagenet.resnet("resnet18"), "torchvision ResNet-18", _STEMS,
             cifar.MIN_SIDE, weights="resnet18"),
    ArchInfo("resnet50", imagenet.resnet("resnet50"), "torchvision ResNet-50", _STEMS,
             cifar.MIN_SIDE, weights="resnet50"),
    ArchInfo("mobilenetv3-small", imagenet.mobilenet_v3("mobilenet_v3_small"),
             "torchvision MobileNetV3-Small (stem stride 1 below 128x128)", _SMALL, cifar.MIN_SIDE,
             weights="mobilenet_v3_small"),
    ArchInfo("mobilenetv3-large", imagenet.mobilenet_v3("mobilenet_v3_large"),
             "torchvision MobileNetV3-Large (stem stride 1 below 128x128)", _SMALL, cifar.MIN_SIDE,
             weights="mobilenet_v3_large"),
    ArchInfo("inception-v3", imagenet.trimmed_inception_v3,
             "torchvision Inception-v3 with the stem trimmed for 64x64 (Appendix B.1.3)",
             "sides of 63 or more", 63, weights="inception_v3"),
    ArchInfo("swin-t", imagenet.torchvision_model("swin_v2_t"), "torchvision Swin Transformer V2-T",
             "sides of 32 or more", 32, weights="swin_v2_t"),
    ArchInfo("vit-b16", imagenet.torchvision_model("vit_b_16"), "torchvision ViT-B/16", "224x224",
             side=224, weights="vit_b_16"),
    ArchInfo("convnext-t", imagenet.torchvision_model("convnext_tiny"), "torchvision ConvNeXt-T",
             "sides of 32 or more", 32, weights="convnext_tiny"),
]

ARCHS: dict[str, ArchInfo] = {info.name: info for info in _RECORDS}


def fitting(input_shape: tuple[int, ...]) -> list[str]:
    """The names of the architectures that take (C, H, W) inputs."""
    return [name for name, info in ARCHS.items() if info.misfit(input_shape) is None]


def build_model(arch: str, input_shape: tuple[int, ...], num_classes: int,
                pretrained: bool = False, normalised: bool | None = None) -> nn.Module:
    """The network ``arch`` for (C, H, W) inputs and ``num_classes`` logits; with ``pretrained``,
    torchvision's ImageNet weights wherever they fit. HemError (one line) for an unknown name
    (listing the names that take this input size), an input size the network does not take, or
    pretrained weights that do not exist or cannot be downloaded.

    ``normalised`` (default: ``pretrained``) makes the network standardise its [0, 1] inputs with
    ImageNet's channel means and deviations first, as torchvision's weights expect; a finished
    pretrained run is rebuilt with ``normalised=True`` and its own weights, without a download."""
    if arch not in ARCHS:
        raise unknown_name("arch", arch, fitting(input_shape) or ARCHS)
    info = ARCHS[arch]
    reason = info.misfit(input_shape)
    if reason:
        raise HemError(reason)
    if pretrained and info.weights is None:
        fetch_pretrained(arch)  # says which archs have weights
    model = info(input_shape, num_classes)
    model = imagenet.load_pretrained(model, arch, info.weights) if pretrained else model
    return with_input_normalisation(model) if (pretrained if normalised is None else normalised) else model


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def with_input_normalisation(model: nn.Module) -> nn.Module:
    """``model`` standardising its inputs by ImageNet's channel statistics before its first layer
    (a forward pre-hook, so its own attributes and state-dict names stay as they are)."""
    model.register_buffer("input_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
    model.register_buffer("input_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
    model.register_forward_pre_hook(_standardise)
    return model


def _standardise(model: nn.Module, args: tuple) -> tuple:
    return ((args[0] - model.input_mean) / model.input_std, *args[1:])


def fetch_pretrained(arch: str) -> None:
    """Make sure torchvision's weights for ``arch`` are in torch's hub cache (downloading them once),
    before a run writes anything; HemError in one line when ``arch`` has none or they cannot be had."""
    info = ARCHS[arch] if arch in ARCHS else None
    if info is None or info.weights is None:
        raise HemError(f"arch {arch!r} has no pretrained weights; archs with weights: "
                       + ", ".join(n for n, i in ARCHS.items() if i.weights))
    imagenet.fetch_state_dict(arch, info.weights)


def count_parameters(model: nn.Module) -> int:
    """The number of parameter scalars (all trainable here: what the paper's Table 3 counts)."""
    return sum(p.numel() for p in model.parameters())


def arch_table(input_shape: tuple[int, ...], num_classes: int) -> list[tuple[str, int | None, str]]:
    """(name, parameter count, note) for every architecture, for (C, H, W) inputs and
    ``num_classes`` classes; the count is None and the note says why where it does not fit."""
    rows = []
    for name, info in ARCHS.items():
        reason = info.misfit(input_shape)
        if reason:
            rows.append((name, None, reason))
            continue
        rows.append((name, _count(info, input_shape, num_classes), info.description))
    return rows


def _count(info: ArchInfo, input_shape: tuple[int, ...], num_classes: int) -> int:
    """The parameter count of ``info``'s network, built on the meta device where it can be (the
    small networks that size themselves with a value read from a tensor are built for real)."""
    try:
        with torch.device("meta"):
            return count_parameters(info(input_shape, num_classes))
    except (RuntimeError, NotImplementedError):
        return count_parameters(info(input_shape, num_classes))
