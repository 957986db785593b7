"""Segmentation networks: segmentation_models_pytorch's FPN (paper Table 7, Appendix B.4.4) on one of
the paper's four encoders, or any other encoder smp has, for 3-channel [0, 1] images whose sides are
multiples of 32 (``hemcli.data.segmentation.pad_to_multiple`` pads them).

smp is imported inside the functions: it takes seconds to import, and ``hem --help`` must not.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from hemcli.errors import HemError, unknown_name


@dataclass(frozen=True)
class EncoderInfo:
    name: str  # smp's encoder_name
    description: str


ENCODERS: dict[str, EncoderInfo] = {}


def _register(name: str, description: str) -> None:
    if name in ENCODERS:
        raise ValueError(f"encoder {name!r} is registered twice")
    ENCODERS[name] = EncoderInfo(name, description)


_register("resnet34", "ResNet-34 (the paper's Table 7)")
_register("efficientnet-b4", "EfficientNet-B4 (the paper's Table 7)")
_register("densenet201", "DenseNet-201 (the paper's Table 7)")
_register("resnext50_32x4d", "ResNeXt-50 32x4d (the paper's Table 7)")
_register("resnet18", "ResNet-18 (small: smoke runs and the generated shapes set)")

SEGMENTATION_ARCHS = {"fpn": "FPN", "unet": "Unet", "deeplabv3plus": "DeepLabV3Plus"}  # name -> smp class
# smp's own weights for these encoders; anything else is refused before a download is tried
WEIGHTS = ("imagenet",)
STRIDE = 32  # every smp encoder above downsamples by 32: inputs are padded to a multiple of it


def check_model(arch: str, encoder: str, weights: str | None) -> None:
    if arch not in SEGMENTATION_ARCHS:
        raise unknown_name("segmentation arch", arch, SEGMENTATION_ARCHS)
    if encoder not in ENCODERS:
        raise unknown_name("encoder", encoder, ENCODERS)
    if weights is not None and weights not in WEIGHTS:
        raise HemError(f"unknown encoder weights {weights!r}; valid choices: {', '.join(WEIGHTS)}, or null (none)")


def build_segmenter(arch: str, encoder: str, num_classes: int, weights: str | None = None) -> nn.Module:
    """smp's ``arch`` on ``encoder`` with ``num_classes`` output maps; ``weights='imagenet'`` loads the
    encoder's ImageNet weights (from the cache, or the network: HemError in one line when neither has them)."""
    import segmentation_models_pytorch as smp

    check_model(arch, encoder, weights)
    try:
        net = getattr(smp, SEGMENTATION_ARCHS[arch])(encoder_name=encoder, encoder_weights=weights, classes=num_classes)
    except Exception as err:  # huggingface_hub's LocalEntryNotFoundError, URLError, OSError, ...
        if weights is None:
            raise
        raise HemError(f"cannot load {weights} weights for encoder {encoder}: not in the cache and the network "
                       f"is unreachable ({type(err).__name__}); run without model.encoder_weights or where "
                       "the network allows once") from None
    return net
