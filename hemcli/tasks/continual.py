"""``hem continual``: a sequence of experiences learned by an Avalanche strategy with a registry loss as
its criterion, measured after every experience (paper Table 6, Appendix B.3; the strategies' settings
are ContinualAI's continual-learning-baselines', ``recipes/continual/``).

``run(cfg, ...) -> dict`` is the whole task and needs no command line; its pieces are in
``hemcli.continual``: the benchmark (``benchmarks``, from hem's dataset registry), Avalanche kept
quiet (``quiet``), the network, optimiser and strategy with hem's hooks (``build``), the experience
loop with its checkpoint and resume (``loop``), the accuracy matrix and its metrics (``measure``) and
the result record (``result``). Avalanche keeps its own training loop within an experience; the
seeding and the device are the engine's (``hemcli.engine.device``), the progress lines
``hemcli.progress``'. Nothing of the task writes to stdout (a library's print goes to stderr):
stdout is the result path's.
"""
from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from hemcli.continual.benchmarks import avalanche_benchmark
from hemcli.continual.build import build_strategy
from hemcli.continual.loop import learn, read_checkpoint, resume_strategy
from hemcli.continual.quiet import import_avalanche
from hemcli.continual.result import result_record
from hemcli.engine.device import seed_everything
from hemcli.errors import HemError
from hemcli.recipes import Field


def _strategies():
    from hemcli.continual.strategies import STRATEGIES
    return list(STRATEGIES)


def _benchmarks():
    from hemcli.continual.benchmarks import BENCHMARKS
    return list(BENCHMARKS)


def _archs():
    from hemcli.models import ARCHS
    return ["mlp", *[name for name in ARCHS if name != "mlp"]]


def schema() -> dict[str, Field]:
    from hemcli.continual.benchmarks import SCENARIOS
    from hemcli.engine.fields import common_fields

    common = common_fields()
    shared = {key: common[key] for key in ("loss.name", "loss.params", "optim.name", "optim.lr", "optim.momentum",
                                           "optim.weight_decay", "optim.nesterov", "seed", "device", "deterministic",
                                           "log.loggers", "log.dir")}
    return {
        "task": Field("str", "continual", "the task this recipe is for", ("continual",)),
        "benchmark.name": Field("str", "split-digits", "benchmark (hem continual --help lists them)", _benchmarks),
        "benchmark.scenario": Field("str?", None, "task, class (Split) or domain (Permuted); null: the "
                                    "benchmark's default (task for Split, domain for Permuted)", SCENARIOS),
        "benchmark.experiences": Field("int", 5, "experiences in the stream", minimum=1),
        "dataset.root": Field("str?", None, "data folder (default $HEM_DATA, else ./data)"),
        "dataset.download": Field("bool", True, "let torchvision download missing files"),
        "dataset.limit": Field("int?", None, "use at most this many images of each split (smoke runs)", minimum=1),
        "model.arch": Field("str", "mlp", "network: mlp (model.hidden), or a trunk of hem's registry", _archs),
        "model.hidden": Field("list[int]", [256, 256], "mlp: hidden layer widths", minimum=1),
        "model.dropout": Field("float", 0.0, "mlp: dropout after each hidden layer", minimum=0, maximum=0.99),
        "strategy.name": Field("str", "naive", "continual-learning strategy", _strategies),
        "strategy.params": Field("dict", {}, "the strategy's parameters, e.g. {ewc_lambda: 1}"),
        **shared,
        "epochs": Field("int", 10, "training epochs per experience", minimum=1),
        "batch_size": Field("int", 32, "training batch size", minimum=1),
        "verbose": Field("bool", False, "Avalanche's own loggers (on stderr)"),
    }


def complete(cfg: dict) -> dict:
    """The benchmark's default scenario written out, so that a run that names it and one that does
    not are one condition."""
    from hemcli.continual.benchmarks import BENCHMARKS

    info = BENCHMARKS.get(cfg["benchmark"]["name"])
    if cfg["benchmark"]["scenario"] is None and info is not None:
        cfg["benchmark"]["scenario"] = info.default_scenario
    return cfg


def check(cfg: dict) -> None:
    """Every check that needs neither the data nor avalanche."""
    from hemcli.continual.benchmarks import benchmark_info, check_split, scenario_of
    from hemcli.continual.strategies import strategy_params
    from hemcli.data import dataset_info
    from hemcli.losses import check_loss
    from hemcli.models import ARCHS

    info = benchmark_info(cfg["benchmark"]["name"])
    scenario_of(info, cfg["benchmark"]["scenario"])
    data = dataset_info(info.dataset)
    check_split(info, data.num_classes, cfg["benchmark"]["experiences"])
    strategy_params(cfg["strategy"]["name"], cfg["strategy"]["params"])
    check_loss(cfg["loss"]["name"], num_classes=data.num_classes, **cfg["loss"]["params"])
    arch = cfg["model"]["arch"]
    if arch != "mlp":
        reason = ARCHS[arch].misfit(data.input_shape)
        if reason:
            raise HemError(f"{reason}; benchmark {info.name} has {data.input_shape[-2]}x{data.input_shape[-1]} "
                           f"images (hem archs --dataset {data.name} lists those that fit)")


def setup(cfg: dict):
    """The device and the stream of experiences (the data loaded, checked; nothing written)."""
    from hemcli.continual.benchmarks import benchmark_info, build_stream, scenario_of
    from hemcli.data import limited, load_dataset
    from hemcli.engine.device import DeviceManager

    complete(cfg)
    check(cfg)
    dm = DeviceManager.from_config(cfg)
    info = benchmark_info(cfg["benchmark"]["name"])
    data = limited(load_dataset(info.dataset, cfg["dataset"]["root"], cfg["dataset"]["download"]),
                   cfg["dataset"]["limit"])
    stream = build_stream(info, data, cfg["benchmark"]["experiences"], scenario_of(info, cfg["benchmark"]["scenario"]),
                          cfg["seed"])
    return dm, stream


def run(cfg: dict, checkpoint: Path | None = None, resume: bool = False, quiet: bool = False,
        prepared=None) -> dict:
    """Learn the stream as ``cfg`` says; returns the result record (``hemcli.continual.result``).

    ``checkpoint``: where hem's continual checkpoint is written after every experience but the last;
    with ``resume``, the run starts again at the experience after the one it was written after, with
    the same model, optimiser, strategy state, replay buffer and random states (``hemcli.continual.loop``).
    ``prepared``: what ``setup(cfg)`` returned, if it has run already."""
    with contextlib.redirect_stdout(sys.stderr):  # stdout is for the result path (| xargs hem report)
        seed_everything(cfg["seed"], cfg["deterministic"])
        dm, stream = prepared or setup(cfg)
        # the checkpoint read before any library sees it
        saved = read_checkpoint(checkpoint, cfg) if checkpoint is not None and resume else None
        import_avalanche(cfg["verbose"])
        benchmark = avalanche_benchmark(stream)
        strategy, record = build_strategy(cfg, stream, dm, quiet)
        start = 0 if saved is None else resume_strategy(strategy, saved, checkpoint, benchmark, cfg)
        began = time.perf_counter()
        learn(strategy, record, benchmark, stream, cfg, dm, start, checkpoint, quiet)
        return result_record(cfg, stream, strategy, record, dm, began)
