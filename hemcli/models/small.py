"""The paper's MNIST networks (Appendix B.1.3, parameter counts from its Table 3).

- ``mlp``: three hidden layers of 200 ReLU units; 239,410 parameters on 28x28 (as the paper).
- ``LeNet``: two 5x5 conv layers of 16 channels, each followed by ReLU and 2x2 max-pooling, a fully
  connected layer of 50 units, then the classifier. 20,192 parameters on 28x28 (the paper lists
  20,194). Inputs smaller than 28x28 get 'same' padding so that both pools still fit.
- ``ConvNet``: fully convolutional, five 3x3 conv layers (32 channels, the last one has one channel
  per class), ReLU, 2x2 average-pooling between them, no normalisation, global average of the last
  map gives the logits. 30,954 parameters on 28x28 (as the paper).
"""
from __future__ import annotations

import torch
from torch import nn


def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: int = 200, depth: int = 3) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = int(torch.tensor(input_shape).prod())
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, num_classes))


def _flat_size(features: nn.Module, input_shape: tuple[int, ...]) -> int:
    with torch.no_grad():
        return features(torch.zeros(1, *input_shape)).numel()


class LeNet(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: int = 16, hidden: int = 50):
        super().__init__()
        padding = 0 if min(input_shape[1:]) >= 28 else 2
        self.features = nn.Sequential(
            nn.Conv2d(input_shape[0], channels, 5, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, channels, 5, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(_flat_size(self.features, input_shape), hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ConvNet(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: int = 32, depth: int = 5):
        super().__init__()
        side = min(input_shape[1:])
        # Pool after the first layers while the map stays at least 2x2 (3 pools on 28x28, 2 on 8x8).
        pools = max(0, min(3, side.bit_length() - 2))
        widths = [input_shape[0]] + [channels] * (depth - 1) + [num_classes]
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], 3, padding=1))
            if i < depth - 1:
                layers.append(nn.ReLU())
            if i < pools:
                layers.append(nn.AvgPool2d(2))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))
