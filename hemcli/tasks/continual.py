"""``hem continual``: a sequence of experiences learned by an Avalanche strategy with a registry loss as
its criterion, measured after every experience (paper Table 6, Appendix B.3).

A benchmark (``hemcli.continual.benchmarks``) comes from hem's dataset registry; the strategy
(``hemcli.continual.strategies``) is Avalanche's, with hem's hooks (``hemcli.continual.hooks``): the
loss rebuilt from the class counts seen so far, progress, and the record a checkpoint carries.
After each training experience every experience's test set is measured: the accuracy matrix. The
result's metrics: ``final_accuracy`` (on the union of all test sets after the last experience, the
paper's metric), ``last_experience_accuracy`` (the last experience's own), ``average_forgetting`` and
``backward_transfer`` (``hemcli.metrics.forgetting``); ``result["continual"]`` holds the matrix.
A checkpoint (hem's own, ``hemcli.continual.checkpoint``: tensors and plain values, read with
``weights_only=True``) is written after every experience but the last (whose result file supersedes
it), so ``--resume`` starts again at the experience a run was killed in, with the same model,
optimiser, strategy state, replay buffer and random states: it ends as the uninterrupted run would.
Nothing of the task writes to stdout (a library's print goes to stderr): stdout is the result path's.
"""
from __future__ import annotations

import contextlib
import sys
import time
import warnings
from pathlib import Path

import torch

from hemcli.errors import HemError
from hemcli.recipes import Field

EVAL_BATCH = 1024


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
                                           "optim.weight_decay", "optim.nesterov", "seed", "device", "deterministic")}
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


def import_avalanche(verbose: bool = False) -> None:
    """Import avalanche's training package, without its warning that no QP solver (for GEM) is installed."""
    with warnings.catch_warnings():
        if not verbose:
            warnings.filterwarnings("ignore", message="no QP solver found")
        import avalanche.training  # noqa: F401
    if not verbose:  # a strategy without loggers says so at every build
        warnings.filterwarnings("ignore", message="No loggers specified")


@contextlib.contextmanager
def deprecations_hidden(verbose: bool):
    """Avalanche's own deprecation notices (its replay buffer calls a method 0.6 deprecates, every
    experience) hidden unless ``verbose``. Its decorator puts a "once" filter first before warning, so
    a filter cannot hide them: the display is replaced instead, for the block only."""
    with warnings.catch_warnings():
        if not verbose:
            show = warnings.showwarning

            def shown_unless_deprecation(message, category, *args, **kwargs):
                if not issubclass(category, DeprecationWarning):
                    show(message, category, *args, **kwargs)
            warnings.showwarning = shown_unless_deprecation
        yield


def build_strategy(cfg: dict, stream, dm, quiet: bool):
    """The model, optimiser and strategy with hem's hooks; returns (strategy, record)."""
    from hemcli.continual.hooks import CountedLoss, ProgressLine, Record
    from hemcli.continual.model import build_network
    from hemcli.continual.strategies import STRATEGIES, strategy_params
    from hemcli.engine.optim import make_optimizer

    shape = tuple(stream.experiences[0].train_x.shape[1:])
    model = build_network(cfg["model"]["arch"], shape, stream.heads, stream.outputs, cfg["model"]["hidden"],
                          cfg["model"]["dropout"])
    record = Record(cfg)
    hooks = [CountedLoss(cfg["loss"]["name"], cfg["loss"]["params"], stream.outputs, dm.device), record,
             ProgressLine(record, len(stream.experiences), cfg["epochs"], quiet)]
    common = {"model": model, "optimizer": make_optimizer(cfg, model.parameters()),
              "criterion": torch.nn.CrossEntropyLoss(),  # replaced by CountedLoss before each experience
              "train_mb_size": cfg["batch_size"], "train_epochs": cfg["epochs"], "eval_mb_size": EVAL_BATCH,
              "device": dm.device, "plugins": hooks, "evaluator": _evaluator(cfg["verbose"])}
    name = cfg["strategy"]["name"]
    return STRATEGIES[name].builder(common, strategy_params(name, cfg["strategy"]["params"])), record


def _evaluator(verbose: bool):
    """No Avalanche logging unless ``verbose`` (then its default: an interactive logger, which ``run``
    sends to stderr with the rest of stdout)."""
    if not verbose:
        return None
    from avalanche.training.plugins.evaluation import default_evaluator
    return default_evaluator()


@torch.no_grad()
def test_accuracies(model, stream, device) -> list[float | None]:
    """% correct on each experience's test set, each sample through its task's head; None for an
    experience whose head does not exist yet (the task scenario's later experiences)."""
    from avalanche.models.utils import avalanche_forward

    model.eval()
    row = []
    for exp in stream.experiences:
        if not model.has_head(exp.task):
            row.append(None)
            continue
        correct = 0
        for start in range(0, len(exp.test_y), EVAL_BATCH):
            x = exp.test_x[start:start + EVAL_BATCH].to(device)
            logits = avalanche_forward(model, x, torch.full((len(x),), exp.task, device=device))
            correct += (logits.argmax(1).cpu() == exp.test_y[start:start + EVAL_BATCH]).sum().item()
        row.append(100.0 * correct / max(len(exp.test_y), 1))
    return row


def run(cfg: dict, checkpoint: Path | None = None, resume: bool = False, quiet: bool = False,
        prepared=None) -> dict:
    with contextlib.redirect_stdout(sys.stderr):  # stdout is for the result path (| xargs hem report)
        return _run(cfg, checkpoint, resume, quiet, prepared)


def _run(cfg: dict, checkpoint: Path | None, resume: bool, quiet: bool, prepared) -> dict:
    from hemcli.continual.benchmarks import avalanche_benchmark
    from hemcli.engine.device import seed_everything
    from hemcli.progress import Progress

    seed_everything(cfg["seed"], cfg["deterministic"])
    dm, stream = prepared or setup(cfg)
    saved = _read(checkpoint, cfg) if checkpoint is not None and resume else None  # before any library sees it
    import_avalanche(cfg["verbose"])
    benchmark = avalanche_benchmark(stream)
    strategy, record = build_strategy(cfg, stream, dm, quiet)
    start = 0
    if saved is not None:
        start = _resume(strategy, saved, checkpoint, benchmark, cfg)
    progress = Progress(cfg["epochs"], quiet)
    progress.say(f"continual {cfg['benchmark']['name']} ({stream.scenario}) {cfg['strategy']['name']} "
                 f"{cfg['model']['arch']} loss={cfg['loss']['name']} seed={cfg['seed']} on {dm.device}"
                 + (f", resuming at experience {start + 1}" if start else ""))
    began = time.perf_counter()
    for index, experience in enumerate(benchmark.train_stream):
        if index < start:
            continue
        tick = time.perf_counter()
        with deprecations_hidden(cfg["verbose"]):
            strategy.train(experience)
        record.seconds.append(time.perf_counter() - tick)
        record.matrix.append(test_accuracies(strategy.model, stream, dm.device))
        progress.say(f"after experience {index + 1}/{len(stream.experiences)}: test accuracy per experience "
                     + " ".join("-" if acc is None else f"{acc:.1f}" for acc in record.matrix[-1]))
        if checkpoint is not None and index + 1 < len(stream.experiences):  # the result file supersedes the last
            _save(strategy, checkpoint)
    return _result(cfg, stream, strategy, record, dm, began)


def _save(strategy, path: Path) -> None:
    """hem's continual checkpoint of the strategy between two experiences, written atomically."""
    from hemcli.continual import checkpoint
    from hemcli.continual.hooks import CountedLoss, Record

    checkpoint.write(path, strategy, _plugin(strategy, Record), _plugin(strategy, CountedLoss))


def _read(path: Path, cfg: dict) -> dict | None:
    """The checkpoint's state, None (with a warning) when there is none; HemError when it is not a
    hem continual checkpoint of this recipe."""
    from hemcli.continual import checkpoint
    from hemcli.progress import warn

    if not path.exists():
        warn(f"no checkpoint at {path}; starting from experience 1")
        return None
    return checkpoint.read(path, cfg)


def _resume(strategy, saved: dict, path: Path, benchmark, cfg: dict) -> int:
    """The freshly built strategy set to where the checkpoint left it; the experience to start at."""
    from hemcli.continual import checkpoint
    from hemcli.continual.hooks import CountedLoss, Record

    return checkpoint.restore(path, saved, strategy, _plugin(strategy, Record), _plugin(strategy, CountedLoss),
                              benchmark.train_stream, cfg)


def _plugin(strategy, kind):
    return next((plugin for plugin in strategy.plugins if isinstance(plugin, kind)), None)


def _result(cfg: dict, stream, strategy, record, dm, began: float) -> dict:
    from hemcli.metrics.forgetting import average_forgetting, backward_transfer, final_accuracy
    from hemcli.models import count_parameters
    from hemcli.runs.record import build_result, environment
    from hemcli.continual.hooks import CountedLoss
    import avalanche

    matrix, sizes = record.matrix, [len(e.test_y) for e in stream.experiences]
    metrics = {"final_accuracy": final_accuracy(matrix, sizes), "last_experience_accuracy": matrix[-1][-1],
               "average_forgetting": average_forgetting(matrix), "backward_transfer": backward_transfer(matrix)}
    metrics = {key: value for key, value in metrics.items() if value is not None}
    env = {**environment(dm.describe()), "avalanche": avalanche.__version__,
           "parameters": count_parameters(strategy.model)}
    timings = {"total_seconds": time.perf_counter() - began, "train_seconds": sum(record.seconds),
               "experience_seconds": record.seconds}
    detail = {"scenario": stream.scenario, "heads": stream.heads, "outputs_per_head": stream.outputs,
              "accuracy_matrix": matrix, "test_sizes": sizes,
              "train_sizes": [len(e.train_y) for e in stream.experiences],
              "classes": [e.classes for e in stream.experiences], "class_order": stream.order,
              "class_counts_seen": _plugin(strategy, CountedLoss).seen.tolist()}
    return {**build_result(cfg, metrics, record.history, env, timings), "continual": detail}
