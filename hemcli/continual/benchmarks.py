"""Continual-learning benchmarks built from hem's dataset registry (so ``--data-root`` and the offline
rules hold), as Avalanche benchmarks (``benchmark_from_datasets``).

Split-D: the classes of D in a random order drawn from the seed, cut into E experiences of C / E
classes. In the ``task`` scenario each experience has its own task label and head, and its labels
count from 0 in that order (experience 1 of order [3, 7, 0, ...] labels 3 -> 0, 7 -> 1), as
Avalanche's ``class_ids_from_zero_in_each_exp``; in the ``class`` scenario one head sees the
dataset's own labels. Permuted-D (``domain`` scenario): every experience is the whole of D with its
pixels in a random order of its own, drawn from the seed; one head, the dataset's labels.
The order and the permutations depend on the seed only: every loss and strategy sees the same ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hemcli.errors import HemError, unknown_name

SCENARIOS = ("task", "class", "domain")


@dataclass(frozen=True)
class BenchmarkInfo:
    name: str
    dataset: str  # a name of hem's dataset registry
    kind: str  # "split" or "permuted"
    description: str

    @property
    def scenarios(self) -> tuple[str, ...]:
        return ("task", "class") if self.kind == "split" else ("domain",)

    @property
    def default_scenario(self) -> str:
        return self.scenarios[0]


_SETS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "digits": "scikit-learn digits (offline)",
         "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
BENCHMARKS: dict[str, BenchmarkInfo] = {}
for _dataset, _words in _SETS.items():
    BENCHMARKS[f"split-{_dataset}"] = BenchmarkInfo(f"split-{_dataset}", _dataset, "split",
                                                    f"{_words}, classes split over the experiences")
for _dataset in ("mnist", "fashion-mnist", "digits"):
    BENCHMARKS[f"permuted-{_dataset}"] = BenchmarkInfo(f"permuted-{_dataset}", _dataset, "permuted",
                                                       f"{_SETS[_dataset]}, pixels permuted per experience")


def benchmark_info(name: str) -> BenchmarkInfo:
    if name not in BENCHMARKS:
        raise unknown_name("benchmark", name, BENCHMARKS)
    return BENCHMARKS[name]


def scenario_of(info: BenchmarkInfo, scenario: str | None) -> str:
    """The scenario asked for (None: the benchmark's default), checked against the benchmark."""
    if scenario is None:
        return info.default_scenario
    if scenario not in info.scenarios:
        raise HemError(f"benchmark {info.name} has no {scenario!r} scenario; valid choices: "
                       f"{', '.join(info.scenarios)}")
    return scenario


def check_split(info: BenchmarkInfo, num_classes: int, experiences: int) -> None:
    if info.kind == "split" and num_classes % experiences:
        raise HemError(f"benchmark {info.name}: {num_classes} classes do not split into {experiences} "
                       f"experiences of equal size; valid choices: a divisor of {num_classes}")


@dataclass
class Experience:
    """One experience's tensors: images as the registry stores them, the labels its head sees, its task."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    task: int
    classes: list[int]  # the dataset's classes in it


@dataclass
class Stream:
    experiences: list[Experience]
    scenario: str
    heads: int  # 1, or one per experience (task scenario)
    outputs: int  # logits per head
    order: list[int] | None = None  # split: the class order
    permutation_seed: int | None = field(default=None)


def class_order(num_classes: int, seed: int) -> list[int]:
    return torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed)).tolist()


def split(data, experiences: int, scenario: str, seed: int) -> Stream:
    order, per = class_order(data.num_classes, seed), data.num_classes // experiences
    parts = []
    for e in range(experiences):
        classes = order[e * per:(e + 1) * per]
        local = torch.full((data.num_classes,), -1, dtype=torch.int64)
        local[classes] = torch.arange(per)
        pick_train, pick_test = torch.isin(data.train_y, torch.tensor(classes)), torch.isin(data.test_y, torch.tensor(classes))
        relabel = (lambda y: local[y]) if scenario == "task" else (lambda y: y)
        parts.append(Experience(data.train_x[pick_train], relabel(data.train_y[pick_train]), data.test_x[pick_test],
                                relabel(data.test_y[pick_test]), e if scenario == "task" else 0, classes))
    heads = experiences if scenario == "task" else 1
    return Stream(parts, scenario, heads, per if scenario == "task" else data.num_classes, order=order)


def permutations(pixels: int, experiences: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randperm(pixels, generator=generator) for _ in range(experiences)]


def permuted(data, experiences: int, seed: int) -> Stream:
    def shuffle(x, perm):
        return x.flatten(1)[:, perm].reshape(x.shape)

    pixels = data.train_x[0].numel()
    parts = [Experience(shuffle(data.train_x, perm), data.train_y, shuffle(data.test_x, perm), data.test_y, 0,
                        list(range(data.num_classes)))
             for perm in permutations(pixels, experiences, seed)]
    return Stream(parts, "domain", 1, data.num_classes, permutation_seed=seed)


def build_stream(info: BenchmarkInfo, data, experiences: int, scenario: str, seed: int) -> Stream:
    if info.kind == "split":
        check_split(info, data.num_classes, experiences)
        stream = split(data, experiences, scenario, seed)
    else:
        stream = permuted(data, experiences, seed)
    for index, exp in enumerate(stream.experiences, 1):
        for part, labels in (("training", exp.train_y), ("test", exp.test_y)):
            if len(labels) == 0:
                raise HemError(f"benchmark {info.name}: experience {index} (classes {exp.classes}) has no {part} "
                               "images; raise dataset.limit or leave it out")
    return stream


def avalanche_benchmark(stream: Stream):
    """The stream as an Avalanche benchmark: a train and a test stream of task-labelled tensor datasets."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels
    # Exported in avalanche.benchmarks.utils.__all__ despite its underscore (0.5 renamed the public
    # make_tensor_classification_dataset to it); the tensors stay as they are, no copy.
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensors

    train = [tensors(e.train_x, e.train_y, targets=e.train_y, task_labels=e.task) for e in stream.experiences]
    test = [tensors(e.test_x, e.test_y, targets=e.test_y, task_labels=e.task) for e in stream.experiences]
    # classes_in_this_experience & co. (Avalanche's multi-head classifier adds its heads by them)
    return with_classes_timeline(with_task_labels(benchmark_from_datasets(train=train, test=test)))
