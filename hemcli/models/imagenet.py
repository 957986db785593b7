"""The torchvision-backed networks of the paper's Tables 3 and 5, adapted to the input they get.

torchvision is imported inside the builders: it takes a second to import, which ``hem --help``
should not pay. Changes from torchvision's models (none adds or removes parameters unless said):

- any input channel count: the first conv is rebuilt with that many input channels (from scratch);
- ``resnet18`` / ``resnet50`` below 128x128: the small-image stem of CIFAR ResNets (a 3x3 conv of
  stride 1 in place of the 7x7 stride-2 conv, no max-pool), as the paper's Table 3 note says;
- ``mobilenetv3-*`` below 128x128: the stem conv gets stride 1 (not 2), so a 32x32 image ends
  in a 2x2 map rather than 1x1 (a stride change only: the parameter count stays torchvision's);
- ``inception-v3``: trimmed for 64x64 as the paper's Appendix B.1.3 says (``TrimmedInception3``).
"""
from __future__ import annotations

import torch
from torch import nn

from hemcli.errors import HemError
from hemcli.progress import warn

SMALL_STEM_BELOW = 128

# Where each torchvision model keeps the conv that sees the image.
FIRST_CONV = {
    "resnet18": "conv1", "resnet50": "conv1", "mobilenet_v3_small": "features.0.0",
    "mobilenet_v3_large": "features.0.0", "inception_v3": "Conv2d_1a_3x3.conv",
    "swin_v2_t": "features.0.0", "vit_b_16": "conv_proj", "convnext_tiny": "features.0.0",
}


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    """Puts ``module`` at dotted ``path`` inside ``model``."""
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


def _conv_like(conv: nn.Conv2d, channels: int, kernel: int | None = None, stride: int | None = None,
               padding: int | None = None) -> nn.Conv2d:
    """A fresh conv with ``conv``'s settings but ``channels`` inputs (and the kernel, stride and
    padding given), He-initialised as torchvision initialises its ResNets."""
    new = nn.Conv2d(channels, conv.out_channels, kernel or conv.kernel_size,
                    stride=stride or conv.stride, padding=conv.padding if padding is None else padding,
                    bias=conv.bias is not None)
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    return new


def _fit_channels(model: nn.Module, tv_name: str, channels: int) -> nn.Module:
    """``model`` with its first conv rebuilt for ``channels`` input channels when that is not 3."""
    if channels != 3:
        path = FIRST_CONV[tv_name]
        _replace(model, path, _conv_like(model.get_submodule(path), channels))
    return model


def torchvision_model(tv_name: str):
    """A builder of torchvision's ``tv_name`` (no weights) for any channel count."""
    def build(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        from torchvision import models
        return _fit_channels(models.get_model(tv_name, num_classes=num_classes), tv_name, input_shape[0])
    return build


def resnet(tv_name: str):
    """A builder of torchvision's ResNet ``tv_name`` with the small-image stem below 128x128."""
    def build(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        from torchvision import models
        model = models.get_model(tv_name, num_classes=num_classes)
        if min(input_shape[1:]) >= SMALL_STEM_BELOW:
            return _fit_channels(model, tv_name, input_shape[0])
        model.conv1 = _conv_like(model.conv1, input_shape[0], kernel=3, stride=1, padding=1)
        model.maxpool = nn.Identity()
        return model
    return build


def mobilenet_v3(tv_name: str):
    """A builder of torchvision's MobileNetV3 ``tv_name`` whose stem has stride 1 below 128x128."""
    def build(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        model = torchvision_model(tv_name)(input_shape, num_classes)
        if min(input_shape[1:]) < SMALL_STEM_BELOW:
            model.features[0][0].stride = (1, 1)
        return model
    return build


def trimmed_inception_v3(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Inception-v3 trimmed for 64x64 inputs (Appendix B.1.3): the first max-pool, the 1x1 and 3x3
    convs after it and the second max-pool are removed (so ``Mixed_5b`` takes the 64 channels of
    ``Conv2d_2b_3x3``), and the auxiliary head's second conv is 4x4 instead of 5x5.

    On 64x64 the maps are 31, 29 (into Mixed_5b), 14 (Mixed_6*) and 6 (Mixed_7*) pixels; the
    auxiliary head pools 14x14 to 4x4, hence its 4x4 conv. Inputs need a side of 63 or more.
    """
    from torchvision.models.inception import BasicConv2d, Inception3, InceptionA

    class TrimmedInception3(Inception3):
        """Returns the main logits only (a training loop expects one tensor); in training mode
        the auxiliary head's logits are kept in ``aux_out`` for a loop that adds their loss."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits, self.aux_out = self._forward(x)
            return logits

    model = TrimmedInception3(num_classes=num_classes, aux_logits=True, init_weights=True)
    model.aux_out = None
    for name in ("maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2"):
        setattr(model, name, nn.Identity())
    model.Mixed_5b = InceptionA(64, pool_features=32)
    model.AuxLogits.conv1 = BasicConv2d(128, 768, kernel_size=4)
    for m in (model.Mixed_5b, model.AuxLogits.conv1):
        _inception_init(m)
    return _fit_channels(model, "inception_v3", input_shape[0])


def _inception_init(module: nn.Module) -> None:
    """torchvision's Inception-v3 initialisation for modules added after construction: convs
    from a normal truncated at 2 sigma with std 0.1, BN weights 1 and biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.trunc_normal_(m.weight, std=0.1, a=-0.2, b=0.2)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def fetch_state_dict(arch: str, tv_name: str) -> dict[str, torch.Tensor]:
    """torchvision's default ImageNet weights of ``tv_name`` (downloaded once into torch's hub
    cache, then read from there); HemError in one line when they cannot be had."""
    from torchvision import models
    weights = models.get_model_weights(tv_name).DEFAULT
    try:
        return torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True)
    except (OSError, RuntimeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        file = weights.url.rsplit("/", 1)[-1]
        raise HemError(
            f"cannot download the pretrained weights of {arch}: {reason}; connect to the network, or "
            f"put {file} in {torch.hub.get_dir()}/checkpoints, or set model.pretrained=false"
        ) from None


def load_pretrained(model: nn.Module, arch: str, tv_name: str) -> nn.Module:
    """``model`` with torchvision's ImageNet weights in every tensor whose name and shape fit;
    the rest (a classifier for other than 1000 classes, a small-image stem, the trimmed parts of
    Inception-v3) stay as initialised, and a warning names them."""
    own = model.state_dict()
    state = fetch_state_dict(arch, tv_name)
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fitting, strict=False)
    fresh = [k for k in own if k not in fitting and not k.endswith("num_batches_tracked")]
    if fresh:
        shown = ", ".join(fresh[:4]) + (f", ... ({len(fresh)} in all)" if len(fresh) > 4 else "")
        warn(f"the pretrained weights of {arch} do not fit {shown}; those start untrained")
    return model
