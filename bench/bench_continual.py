"""`hem continual` (split-digits, naive, 5 experiences, the default recipe) against a bare Avalanche
script doing the same training: the same five task-labelled experiences, an MLP 2x256 with a head per
task, Adam 1e-3, batch 32, 10 epochs each, no loggers, each experience's test accuracy after each one.
Both in this process with avalanche already imported, alternating, median of the rounds; hem's side is
the whole command (recipe, a checkpoint after every experience but the last, result file). Both train
on hem's digits split (stratified 80/20, its own seed). Target <= 1.05x.

``bench_continual_resume``: the same run killed after experience 2 and resumed (``--resume``) against
the uninterrupted run, the median epoch time of experiences 3-5 of each (the resumed epochs used to
take ~4 s instead of ~0.07 s). Target <= 1.5x."""
from __future__ import annotations

import contextlib
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _bare_avalanche() -> float:
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensors
    from avalanche.models import MultiHeadClassifier, MultiTaskModule
    from avalanche.training.supervised import Naive
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    start = time.perf_counter()
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(digits.target)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0)).tolist()
    test = torch.zeros(len(y), dtype=torch.bool)  # hem's digits split: stratified 80/20, its own seed
    test[train_test_split(range(len(y)), test_size=0.2, stratify=digits.target, random_state=0)[1]] = True
    streams = {"train": [], "test": []}
    parts = []
    for e in range(5):
        classes = order[2 * e:2 * e + 2]
        for name, pick in (("train", ~test), ("test", test)):
            keep = pick & torch.isin(y, torch.tensor(classes))
            local = (y[keep] == classes[1]).long()
            streams[name].append(tensors(x[keep], local, targets=local, task_labels=e))
            if name == "test":
                parts.append((x[keep], local, e))
    benchmark = with_classes_timeline(with_task_labels(benchmark_from_datasets(**streams)))

    class Net(MultiTaskModule):
        def __init__(self):
            super().__init__()
            self.trunk = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 256), torch.nn.ReLU(),
                                             torch.nn.Linear(256, 256), torch.nn.ReLU())
            self.classifier = MultiHeadClassifier(256, initial_out_features=2, masking=False)

        def forward(self, x, task_labels):
            return self.classifier(self.trunk(x), task_labels)

    model = Net()
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                     criterion=torch.nn.CrossEntropyLoss(), train_mb_size=32, train_epochs=10, eval_mb_size=1024,
                     device="cpu", evaluator=None)
    for i, experience in enumerate(benchmark.train_stream):
        strategy.train(experience)
        model.eval()
        with torch.no_grad():
            [(model(px, tx).argmax(1) == py).float().mean().item() for px, py, tx in parts[:i + 1]]
    return time.perf_counter() - start


def _hem_continual() -> float:
    from hemcli.cli import main

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        assert main(["continual", "--loss", "ce", "--device", "cpu", "--out", out, "--quiet"]) == 0
        return time.perf_counter() - start


def bench_continual(rounds: int = 7) -> dict:
    import warnings

    from hemcli.continual.quiet import import_avalanche

    warnings.filterwarnings("ignore")
    import_avalanche()
    _bare_avalanche()  # warm-up of both sides' code paths
    _hem_continual()
    hem, bare = [], []
    for i in range(rounds):
        for side in ((hem, bare) if i % 2 == 0 else (bare, hem)):
            side.append(_hem_continual() if side is hem else _bare_avalanche())
    hem_s, bare_s = statistics.median(hem), statistics.median(bare)
    return {"what": "hem continual split-digits naive (5 experiences) / bare Avalanche script",
            "hem_s": hem_s, "reference_s": bare_s, "ratio": hem_s / bare_s, "target": 1.05}


def _epoch_seconds(strategy: str, resumed: bool) -> list[float]:
    """The epoch times of experiences 3-5 of split-digits (the default recipe), run whole or killed
    right after experience 2's checkpoint and resumed in the same process."""
    from unittest import mock

    from hemcli.runs.spec import plan_run
    from hemcli.continual import loop
    from hemcli.tasks import continual

    cfg = plan_run("continual", None, {"loss.name": "ce", "strategy.name": strategy, "device": "cpu"}, [], ".").cfg
    with tempfile.TemporaryDirectory() as out:
        checkpoint = Path(out) / "seed0.ckpt.pt"
        if resumed:
            save, saved = loop.save_checkpoint, []

            def save_then_die(strategy, path):
                save(strategy, path)
                saved.append(path)
                if len(saved) == 2:
                    raise KeyboardInterrupt

            with mock.patch.object(loop, "save_checkpoint", save_then_die), contextlib.suppress(KeyboardInterrupt):
                continual.run(copy.deepcopy(cfg), checkpoint=checkpoint, quiet=True)
        result = continual.run(copy.deepcopy(cfg), checkpoint=checkpoint, resume=resumed, quiet=True)
    return [h["seconds"] for h in result["history"] if h["experience"] >= 2]


def bench_continual_resume(strategy: str = "naive", rounds: int = 3) -> dict:
    import warnings

    from hemcli.continual.quiet import import_avalanche

    warnings.filterwarnings("ignore")
    import_avalanche()
    _epoch_seconds(strategy, resumed=False)  # warm-up
    whole, resumed = [], []
    for i in range(rounds):
        for side in ((whole, resumed) if i % 2 == 0 else (resumed, whole)):
            side.extend(_epoch_seconds(strategy, resumed=side is resumed))
    hem_s, reference_s = statistics.median(resumed), statistics.median(whole)
    return {"what": f"hem continual split-digits {strategy}: an epoch after --resume / an uninterrupted epoch",
            "hem_s": hem_s, "reference_s": reference_s, "ratio": hem_s / reference_s, "target": 1.5}


if __name__ == "__main__":
    torch.set_num_threads(1)
    for entry in (bench_continual(), bench_continual_resume("naive"), bench_continual_resume("ewc")):
        print(f"{entry['what']}: x{entry['ratio']:.2f} ({entry['hem_s']:.4f}s vs {entry['reference_s']:.4f}s)")
