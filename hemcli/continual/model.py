"""The networks of ``hem continual``: a trunk (an MLP as ContinualAI's baselines use for MNIST-like
sets, or any network of hem's registry without its last linear layer) and one head, or one head per
task (the task scenario). Both give Avalanche what its strategies ask of a model: ``get_features``
(LFL), and the multi-head one is a ``MultiTaskModule`` that picks each sample's head by its task label.
Only ``hem continual`` imports this module, so avalanche is imported at its top."""
from __future__ import annotations

import torch
from avalanche.models import MultiHeadClassifier, MultiTaskModule
from avalanche.models.base_model import BaseModel
from torch import nn

from hemcli.engine.batches import to_unit


class MLP(nn.Module):
    """Flattened [0, 1] pixels -> (Linear, ReLU, Dropout) per hidden width."""

    def __init__(self, inputs: int, hidden: list[int], dropout: float):
        super().__init__()
        layers, width = [], inputs
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True)] + ([nn.Dropout(dropout)] if dropout else [])
            width = size
        self.layers, self.width = nn.Sequential(*layers), width

    def forward(self, x):
        return self.layers(to_unit(x).flatten(1))


class Unit(nn.Module):
    """uint8 pixels as stored -> float in [0, 1], then ``net``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(to_unit(x))


def registry_trunk(arch: str, input_shape, num_classes: int) -> tuple[nn.Module, int]:
    """Network ``arch`` of hem's registry with its last linear layer replaced by the identity, and
    that layer's input width."""
    from hemcli.models import build_model

    net = build_model(arch, tuple(input_shape), num_classes)
    name, last = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
    parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
    setattr(parent, name.rpartition(".")[2], nn.Identity())
    return Unit(net), last.in_features


def trunk(arch: str, input_shape, num_classes: int, hidden: list[int], dropout: float) -> tuple[nn.Module, int]:
    if arch == "mlp":
        mlp = MLP(int(torch.tensor(input_shape).prod()), hidden, dropout)
        return mlp, mlp.width
    return registry_trunk(arch, input_shape, num_classes)


class SingleHead(nn.Module, BaseModel):
    """The trunk and one head (the class and domain scenarios)."""

    def __init__(self, body: nn.Module, width: int, outputs: int):
        super().__init__()
        self.trunk, self.head = body, nn.Linear(width, outputs)

    def get_features(self, x):
        return self.trunk(x)

    def has_head(self, task: int) -> bool:
        return True

    def forward(self, x):
        return self.head(self.trunk(x))


class MultiHead(MultiTaskModule, BaseModel):
    """The trunk and Avalanche's ``MultiHeadClassifier``: a head of ``outputs`` logits is added for
    each new task label when its experience starts (so LFL's "last linear layer" is the newest head,
    as Avalanche means it), and a sample's logits are those of its task's head."""

    def __init__(self, body: nn.Module, width: int, outputs: int):
        super().__init__()
        self.trunk = body
        self.classifier = MultiHeadClassifier(width, initial_out_features=outputs, masking=False)

    def get_features(self, x):
        return self.trunk(x)

    def has_head(self, task: int) -> bool:
        """Whether the head of ``task`` exists yet (it is added when its experience starts)."""
        return str(int(task)) in self.classifier.classifiers

    def forward_single_task(self, x, task_label):
        return self.classifier.forward_single_task(self.trunk(x), task_label)

    def forward(self, x, task_labels):
        return self.classifier(self.trunk(x), task_labels)  # the trunk once, whatever the tasks


def build_network(arch: str, input_shape, heads: int, outputs: int, hidden: list[int], dropout: float) -> nn.Module:
    """One head of ``outputs`` logits, or one per task (``heads`` > 1)."""
    body, width = trunk(arch, input_shape, heads * outputs, hidden, dropout)
    return SingleHead(body, width, outputs) if heads == 1 else MultiHead(body, width, outputs)
