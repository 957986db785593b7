"""The ``hem`` command line. Commands stay thin: resolve the recipe, call the task's ``run``, write.

Only typer is imported at start-up; torch and every task import inside the command that needs
them, so ``hem --help`` stays fast. Bad input ends with one line on stderr and exit code 2.

Stdout carries only what a command is for (result paths, a table), so ``hem`` composes in pipes:
while a command works, whatever a library prints goes to stderr (``_results_only``), and ``_emit``
writes to the real stdout. SIGTERM (how Slurm preempts) unwinds like Ctrl-C, exit 143.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import List, Optional

import typer

from hemcli.errors import HemError, Interrupted, RunFailed, Terminated

app = typer.Typer(
    name="hem",
    help="High error margin (HEM) loss and the evaluation of the paper that proposed it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rendering it with rich imports ~50 ms of modules on every `hem --help`.
    rich_markup_mode=None,
)

RecipeOpt = typer.Option(None, "--recipe", "-r", help="Recipe YAML; flags and --set override it.")
SetOpt = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                      help="Set any recipe key, e.g. --set optim.lr=0.05 or --set loss.params.M=1000 (repeatable).")
OutOpt = typer.Option("results", "--out", "-o", help="Folder for result JSON files.")
OverwriteOpt = typer.Option(False, "--overwrite", help="Replace an existing result (and its checkpoint).")
ResumeOpt = typer.Option(False, "--resume", help="Continue an interrupted run from its checkpoint.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress output.")
EvalHelp = "Evaluations after training, comma-separated: clean, shots, corrupt, ood, attack, calibration."
ScoresOpt = typer.Option(None, metavar="LIST", help="Confidence scores for rejection and DAR: msp, mls, energy, gen.")
OodSamplesOpt = typer.Option(None, metavar="INT", help="Images per synthetic unknown set, at most per real one (10000).")
CorruptSamplesOpt = typer.Option(None, metavar="INT", help="At most this many images per corruption and severity.")
AttackSamplesOpt = typer.Option(None, metavar="INT", help="Test images attacked by AutoAttack (the paper: 10000).")
AttackBatchOpt = typer.Option(None, metavar="INT", help="Images per attack batch, the step an attack resumes at (500).")
AttackStrengthOpt = typer.Option(None, help="torchattacks (its step counts, as the paper ran) or official (AutoAttack's).")


def _flag_values(**flags) -> dict:
    """Flags as recipe keys; their values are read like --set values (as YAML) and checked by the
    recipe schema, so `--epochs abc` and `--set epochs=abc` fail the same way."""
    from hemcli.runs.spec import FLAG_KEYS, LIST_FLAGS, TEXT_FLAGS
    from hemcli.values import read_value

    values = {}
    for name, text in flags.items():
        if text is None:
            continue
        if name in LIST_FLAGS and not text.lstrip().startswith("["):
            values[FLAG_KEYS[name]] = [part.strip() for part in text.split(",")]
            continue
        try:
            value = text if name in TEXT_FLAGS else read_value(text)
        except HemError:
            value = text  # refused by the schema with the key's name: "must be a number, got '[1'"
        values[FLAG_KEYS[name]] = value
    return values


def _train_task(task: str, recipe, flags: dict, sets, out, overwrite, resume, quiet, deterministic) -> None:
    """Shared by every training command: plan (every check), train, write atomically, print the path."""
    with _results_only():
        path = _plan_and_train(task, recipe, flags, sets, out, overwrite, resume, quiet, deterministic)
    if path is not None:
        _emit(str(path))


def _plan_and_train(task: str, recipe, flags: dict, sets, out, overwrite, resume, quiet, deterministic):
    """The run's result path once it is written (None on a data-parallel rank other than 0)."""
    from hemcli.recipes import read_text_inputs

    if deterministic:
        sets = [*sets, "deterministic=true"]
    read_text_inputs(recipe, sets)  # hostile YAML refused before torch is imported (~0.6 GB, seconds)
    from hemcli.runs import execute
    from hemcli.runs.paths import checkpoint_path
    from hemcli.runs.spec import plan_run

    spec = plan_run(task, recipe, flags, sets, out)
    if recipe is None and not quiet:
        from hemcli.runs.spec import paper_recipe

        found = paper_recipe(task, flags)
        if found is not None:
            print(f"hem: training as the paper's recipe {found} says", file=sys.stderr)
    if recipe is not None and _has_grid(recipe):
        from hemcli.progress import warn
        warn(f"{recipe} has a grid: block; hem {task} runs one run of it (hem sweep {task} runs the grid)")
    try:
        result = execute.train(spec, overwrite=overwrite, resume=resume, quiet=quiet)
    except KeyboardInterrupt as stop:
        checkpoint = checkpoint_path(spec.path)
        kept = (f"continue with --resume (checkpoint {checkpoint})" if checkpoint.is_file()
                else "no checkpoint was written yet")
        terminated = isinstance(stop, Terminated)
        raise Interrupted(f"{'terminated' if terminated else 'interrupted'}; {kept}", terminated) from None
    if result is None:  # a rank other than 0 of a data-parallel run: rank 0 reports
        return None
    if not quiet:
        shown = ", ".join(f"{k} {result['metrics'][k]:.2f}" for k in _headline(result))
        print(f"{shown}  ->  {spec.path}", file=sys.stderr)
    return spec.path


def _has_grid(recipe) -> bool:
    from hemcli.recipes import recipe_grid

    return recipe_grid(recipe) is not None


# The options every training command takes: (parameter, type, typer option). A command adds its own.
_TRAINING_OPTIONS = [
    ("recipe", Optional[Path], RecipeOpt),
    ("dataset", Optional[str], typer.Option(None, help="digits (default, offline), mnist, fashion-mnist, cifar10, "
                                                       "...; `hem datasets` lists them.")),
    ("arch", Optional[str], typer.Option(None, help="lenet (default), convnet, mlp, resnet32, ...; "
                                                    "`hem archs --dataset D` lists them.")),
    ("loss", Optional[str], typer.Option(None, help="Loss name; `hem losses` lists them.")),
    ("epochs", Optional[str], typer.Option(None, metavar="INT", help="Training epochs.")),
    ("seed", Optional[str], typer.Option(None, metavar="INT", help="Seed.")),
    ("lr", Optional[str], typer.Option(None, metavar="FLOAT", help="Learning rate.")),
    ("batch_size", Optional[str], typer.Option(None, metavar="INT", help="Batch size.")),
    ("device", Optional[str], typer.Option(None, help="auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps.")),
    ("data_root", Optional[str], typer.Option(None, help="Data folder (default $HEM_DATA, else ./data).")),
    ("scores", Optional[str], ScoresOpt),
    ("ood_samples", Optional[str], OodSamplesOpt),
    ("corrupt_samples", Optional[str], CorruptSamplesOpt),
    ("attack_samples", Optional[str], AttackSamplesOpt),
    ("attack_batch_size", Optional[str], AttackBatchOpt),
    ("attack_strength", Optional[str], AttackStrengthOpt),
]
_RUN_OPTIONS = [
    ("set_", List[str], SetOpt),
    ("out", Path, OutOpt),
    ("overwrite", bool, OverwriteOpt),
    ("resume", bool, ResumeOpt),
    ("quiet", bool, QuietOpt),
    ("deterministic", bool, typer.Option(False, "--deterministic", help="Deterministic kernels.")),
]


def _training_command(task: str, doc: str, eval_default: str | None, extra=(), extra_sets=None,
                      base=_TRAINING_OPTIONS) -> None:
    """Register ``hem <task>``: the ``base`` training options, ``--eval`` (default ``eval_default``;
    none where that is None), the task's ``extra`` (name, type, option) flags -- recipe keys by
    ``FLAG_KEYS`` -- and the run options; ``extra_sets(values) -> [--set ...]`` turns switches into
    recipe settings."""
    import inspect

    eval_option = [("eval_", Optional[str], typer.Option(None, "--eval", metavar="LIST",
                                                         help=f"{EvalHelp} Default: {eval_default}."))]
    options = [*base, *(eval_option if eval_default else []), *extra, *_RUN_OPTIONS]
    switches = [name for name, kind, _ in extra if kind is bool]

    def command(**values):
        sets = list(values.pop("set_")) + (extra_sets({k: values.pop(k) for k in switches}) if extra_sets else [])
        run_values = [values.pop(name) for name, _, _ in _RUN_OPTIONS[1:]]
        recipe, eval_value = values.pop("recipe"), values.pop("eval_", None)
        flags = _flag_values(eval=eval_value, **values)
        _train_task(task, recipe, flags, sets, *run_values)

    command.__signature__ = inspect.Signature([
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        for name, kind, option in options])
    command.__doc__, command.__name__ = doc, task
    app.command(name=task)(command)


_training_command("classify", "Train a classifier with a loss, then measure it (default: digits, offline; clean "
                  "accuracy).", "clean")
_training_command(
    "longtail", "Train on a long-tailed subset (class j keeps its first floor(s_j f^j) samples), then measure it "
    "with many/medium/few-shot accuracy (default: digits, imbalance 10, offline).", "clean,shots",
    extra=[("imbalance", Optional[str], typer.Option(None, metavar="FLOAT", help="Largest / smallest class count "
                                                     "R (f = R^(-1/(C-1))); --set longtail.factor=f gives f itself.")),
           ("oversample", bool, typer.Option(False, "--oversample",
                                             help="Every class as often as the largest, each epoch."))],
    extra_sets=lambda switches: ["sampling=oversample"] if switches["oversample"] else [])
_training_command(
    "continual", "Learn a stream of experiences with an Avalanche strategy and a loss, measuring every experience "
    "after each (default: split-digits, task scenario, naive, offline). Benchmarks: split-digits, split-mnist, "
    "split-fashion-mnist, split-cifar10, split-cifar100, permuted-mnist, permuted-fashion-mnist, permuted-digits. "
    "Strategies: naive, replay, si, ewc, lwf, lfl (their parameters: --set strategy.params.NAME=VALUE).", None,
    base=[("arch", Optional[str], typer.Option(None, help="mlp (default; --set model.hidden=[W,...]) or a trunk "
                                                         "of `hem archs`, e.g. resnet18."))
          if option[0] == "arch" else option for option in _TRAINING_OPTIONS if option[0] in
          ("recipe", "arch", "loss", "epochs", "seed", "lr", "batch_size", "device", "data_root")],
    extra=[("benchmark", Optional[str], typer.Option(None, help="Benchmark, e.g. split-mnist (default split-digits).")),
           ("scenario", Optional[str], typer.Option(None, help="task or class (Split; default task), domain "
                                                               "(Permuted).")),
           ("strategy", Optional[str], typer.Option(None, help="naive (default), replay, si, ewc, lwf, lfl.")),
           ("verbose", bool, typer.Option(False, "--verbose", help="Avalanche's own loggers too."))],
    extra_sets=lambda switches: ["verbose=true"] if switches["verbose"] else [])


_training_command(
    "segment", "Train a segmentation network (smp FPN) with a loss applied per pixel, then measure mean IoU on the "
    "test split (default: generated shapes, offline). Datasets: shapes, camvid, cityscapes, sbd, ade20k.", None,
    base=[("dataset", Optional[str], typer.Option(None, help="shapes (default, offline), camvid, cityscapes, sbd, "
                                                             "ade20k."))
          if option[0] == "dataset" else option for option in _TRAINING_OPTIONS if option[0] in
          ("recipe", "dataset", "loss", "epochs", "seed", "lr", "batch_size", "device", "data_root")],
    extra=[("encoder", Optional[str], typer.Option(None, help="resnet34, efficientnet-b4, densenet201, "
                                                             "resnext50_32x4d (the paper's), resnet18 (default)."))])


@app.command(context_settings={"help_option_names": ["--help", "-h"]})
def sweep(
    task: str = typer.Argument(..., help="The task to sweep: classify, longtail, continual or segment."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", "-r",
                                          help="Recipe YAML; a grid: block in it adds axes to the grid."),
    dataset: Optional[str] = typer.Option(None, metavar="LIST", help="Datasets, e.g. digits,fashion-mnist."),
    arch: Optional[str] = typer.Option(None, metavar="LIST", help="Networks, e.g. mlp,lenet."),
    loss: Optional[str] = typer.Option(None, metavar="LIST", help="Losses, e.g. ce,hem."),
    epochs: Optional[str] = typer.Option(None, metavar="LIST", help="Epochs, e.g. 10,20."),
    seed: Optional[str] = typer.Option(None, metavar="LIST", help="Seeds, e.g. 0-4 (0 to 4) or 0,3,7."),
    lr: Optional[str] = typer.Option(None, metavar="LIST", help="Learning rates, e.g. 0.1,0.01."),
    batch_size: Optional[str] = typer.Option(None, metavar="LIST", help="Batch sizes, e.g. 64,128."),
    device: Optional[str] = typer.Option(None, metavar="LIST", help="Device of every run (see hem classify)."),
    data_root: Optional[str] = typer.Option(None, help="Data folder."),
    set_: List[str] = typer.Option([], "--set", "-s", metavar="KEY=A,B,...",
                                   help="A recipe key and its values, e.g. --set loss.params.M=500,2000 (repeatable)."),
    out: Path = OutOpt,
    backend: str = typer.Option("local", help="local (worker processes), ray or slurm."),
    jobs: Optional[int] = typer.Option(None, min=1, help="local: parallel runs (default: one per GPU, else 1)."),
    address: Optional[str] = typer.Option(None, help="ray: HOST:PORT of a running cluster (default: a local instance)."),
    cpus_per_run: Optional[int] = typer.Option(None, min=1, help="CPU threads per run (local: default cores / jobs; ray, slurm: 1)."),
    gpus_per_run: Optional[int] = typer.Option(None, min=0, help="ray, slurm: GPUs per run (default 1 where there are GPUs)."),
    slurm_partition: Optional[str] = typer.Option(None, help="slurm: partition."),
    slurm_time: Optional[str] = typer.Option(None, help="slurm: time limit per run, minutes or [D-]HH:MM:SS (default 24:00:00)."),
    slurm_array_parallelism: Optional[int] = typer.Option(None, min=1, help="slurm: runs of the array at a time."),
    slurm_cluster: str = typer.Option("slurm", help="slurm: slurm, or local (submitit's local executor, to try a sweep)."),
    eval_: Optional[str] = typer.Option(None, "--eval", metavar="LIST",
                                        help=EvalHelp + " The same for every run (not an axis)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print each run as a hem command line; run nothing."),
    quiet: bool = QuietOpt,
    deterministic: bool = typer.Option(False, "--deterministic", help="Deterministic kernels."),
):
    """Run a grid of one task: every list flag and --set takes A,B,C; finished runs are skipped."""
    with _results_only():
        text = _sweep(task, recipe, dataset, arch, loss, epochs, seed, lr, batch_size, device, data_root, set_, out,
                      backend, jobs, address, cpus_per_run, gpus_per_run, slurm_partition, slurm_time,
                      slurm_array_parallelism, slurm_cluster, eval_, dry_run, quiet, deterministic)
    if text:
        _emit(text)


def _sweep(task, recipe, dataset, arch, loss, epochs, seed, lr, batch_size, device, data_root, set_, out, backend,
           jobs, address, cpus_per_run, gpus_per_run, slurm_partition, slurm_time, slurm_array_parallelism,
           slurm_cluster, eval_, dry_run, quiet, deterministic) -> str | None:
    """The sweep itself; returns what goes to stdout (the dry run's command lines, or the report)."""
    from hemcli.recipes import read_text_inputs

    read_text_inputs(recipe, set_)  # hostile YAML refused before any process imports torch
    from hemcli.runs.sweep.backends import SLURM_CLUSTERS, BackendOptions, make_backend
    from hemcli.runs.sweep.backends.local import start_workers_early

    if backend == "local" and not dry_run:
        start_workers_early()  # imports only: nothing runs before the whole grid is checked
    from hemcli.runs import sweep as sweeps

    if slurm_cluster not in SLURM_CLUSTERS:
        raise HemError(f"unknown --slurm-cluster {slurm_cluster!r}; valid choices: {', '.join(SLURM_CLUSTERS)}")
    flags = {"dataset": dataset, "arch": arch, "loss": loss, "epochs": epochs, "seed": seed, "lr": lr,
             "batch_size": batch_size, "device": device, "data_root": data_root}
    if eval_ is not None:
        set_ = [*set_, f"eval=[{eval_}]"]
    specs = sweeps.plan(task, recipe, flags, set_, out, deterministic)
    options = BackendOptions(jobs, address, cpus_per_run, gpus_per_run, slurm_partition, slurm_time,
                             slurm_array_parallelism, slurm_cluster)
    runner = make_backend(backend, options, out)
    sweeps.validate(specs, out, load_data=backend == "local" and not dry_run)
    if dry_run:
        return "\n".join(spec.shell_command() for spec in specs)
    try:
        outcomes = sweeps.run(specs, runner, quiet)
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)
        raise Interrupted(f"{'terminated' if terminated else 'interrupted'}; run the same command again to go "
                          "on: finished runs are kept, interrupted ones resume from their checkpoints",
                          terminated) from None
    for line in sweeps.failure_summary(outcomes):
        print(line, file=sys.stderr)
    finished = [spec.path for spec in specs if spec.path.is_file()]
    failed = sum(outcome["status"] == "failed" for _, outcome in outcomes)
    table = None
    if finished:
        from hemcli.report import report as make_report
        table = make_report(finished, warn=lambda line: print(line, file=sys.stderr))
    if failed:
        if table:
            _emit(table)
        raise RunFailed(f"{failed} of {len(specs)} runs failed (listed above)")
    return table


PathsArg = typer.Argument(..., help="Result files, or folders searched for them (a whole sweep).")
MeasureSetOpt = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                             help="Set an evaluation key, e.g. --set evaluation.accept=0.9 (repeatable).")
MeasureDeviceOpt = typer.Option(None, help="auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps (default: the run's).")
MeasureRootOpt = typer.Option(None, help="Data folder (default: the run's).")


@app.command()
def evaluate(
    paths: List[Path] = PathsArg,
    eval_: str = typer.Option("corrupt,ood,calibration", "--eval", metavar="LIST", help=EvalHelp),
    scores: Optional[str] = ScoresOpt,
    ood_samples: Optional[str] = OodSamplesOpt,
    corrupt_samples: Optional[str] = CorruptSamplesOpt,
    attack_samples: Optional[str] = AttackSamplesOpt,
    attack_batch_size: Optional[str] = AttackBatchOpt,
    attack_strength: Optional[str] = AttackStrengthOpt,
    device: Optional[str] = MeasureDeviceOpt,
    data_root: Optional[str] = MeasureRootOpt,
    set_: List[str] = MeasureSetOpt,
    quiet: bool = QuietOpt,
):
    """Measure finished runs again from their checkpoints and add the metrics to their results."""
    flags = _flag_values(eval=eval_, scores=scores, ood_samples=ood_samples, corrupt_samples=corrupt_samples,
                         attack_samples=attack_samples, attack_batch_size=attack_batch_size,
                         attack_strength=attack_strength, device=device, data_root=data_root)
    _measure_again(paths, flags, set_, quiet)


@app.command()
def attack(
    paths: List[Path] = PathsArg,
    attack_samples: Optional[str] = AttackSamplesOpt,
    attack_batch_size: Optional[str] = AttackBatchOpt,
    attack_strength: Optional[str] = AttackStrengthOpt,
    scores: Optional[str] = ScoresOpt,
    device: Optional[str] = MeasureDeviceOpt,
    data_root: Optional[str] = MeasureRootOpt,
    set_: List[str] = MeasureSetOpt,
    quiet: bool = QuietOpt,
):
    """AutoAttack DAR of finished runs (l-inf and l2), added to their results; resumes per batch."""
    flags = _flag_values(eval="attack", scores=scores, attack_samples=attack_samples,
                         attack_batch_size=attack_batch_size, attack_strength=attack_strength, device=device,
                         data_root=data_root)
    _measure_again(paths, flags, set_, quiet)


def _measure_again(paths, flags: dict, sets, quiet: bool) -> None:
    """Check every result first (nothing changes on bad input), then measure each; paths on stdout."""
    from hemcli import recipes
    from hemcli.tasks import evaluate as again

    overrides = dict(flags)
    for assignment in sets:
        key, value = recipes.parse_set(assignment)
        if key != "eval" and not key.startswith("evaluation."):
            raise HemError(f"--set {key}: only eval and evaluation.* keys can change for a finished run")
        overrides[key] = value
    names = overrides["eval"]
    with _results_only():
        items = again.plan(paths, overrides)
        cache = again.DataCache()
        again.check_all(items, cache)
        for item in items:
            try:
                result = again.measure(item, names, cache, quiet)
            except KeyboardInterrupt as stop:
                terminated = isinstance(stop, Terminated)
                raise Interrupted(f"{'terminated' if terminated else 'interrupted'}; {item.path} is unchanged (run "
                                  "the same command again: an attack goes on from its last finished batch)",
                                  terminated) from None
            if not quiet:
                shown = ", ".join(f"{k} {result['metrics'][k]:.2f}" for k in _headline(result))
                print(f"{shown}  ->  {item.path}", file=sys.stderr)
            _emit(str(item.path))  # each path as soon as it is measured: a pipe can start on it


def _headline(result: dict) -> list[str]:
    """The metrics a person looks at first (the MSP ones over all sets, the DAR mean); all are in the JSON."""
    wanted = ("clean_accuracy", "corrupt_accuracy", "unknown_auroc_msp_all", "dar_msp_mean", "ece", "final_accuracy",
              "average_forgetting", "mean_iou", "pixel_accuracy")
    return [key for key in wanted if key in result["metrics"]]


@app.command()
def report(
    paths: List[Path] = typer.Argument(..., help="Result files or folders (searched recursively)."),
    format: str = typer.Option("github", "--format", "-f", help="github, latex, csv, json or html."),
    metrics: Optional[str] = typer.Option(None, help="Comma-separated metric columns to show."),
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="FILE.png",
                                        help="Also draw each loss's difference to CE with its 95% interval."),
):
    """Results as a table by condition: mean ± std over seeds, n, difference to the matching CE condition."""
    from hemcli.report import report as make_report

    with _results_only():
        text = make_report(paths, fmt=format, metrics=metrics, warn=lambda line: print(line, file=sys.stderr),
                           plot=plot)
    _emit(text)


@app.command()
def losses():
    """List the losses of the registry with their defaults."""
    from tabulate import tabulate

    from hemcli.losses import LOSSES

    rows = [(name, ", ".join(f"{k}={_shown(v)}" for k, v in info.defaults.items()) or "-",
             "yes" if info.needs_class_counts else "", info.description) for name, info in LOSSES.items()]
    _emit(tabulate(rows, headers=["loss", "defaults", "class counts", "description"], tablefmt="github"))


@app.command()
def archs(dataset: str = typer.Option("cifar10", help="Size the networks for this dataset's images and classes.")):
    """List the networks with their parameter counts for a dataset (those that do not fit say why)."""
    from tabulate import tabulate

    from hemcli.data import dataset_info
    from hemcli.models import arch_table

    info = dataset_info(dataset)
    rows = [(name, f"{count:,}" if count is not None else "-", note)
            for name, count, note in arch_table(info.input_shape, info.num_classes)]
    shape = "x".join(map(str, info.input_shape))
    _emit(f"{info.name}: {shape} inputs, {info.num_classes} classes\n"
          + tabulate(rows, headers=["arch", "parameters", "description"], tablefmt="github",
                     colalign=("left", "right", "left")))


@app.command()
def datasets():
    """List the datasets with their image shape, class count and the files each needs under --data-root."""
    from tabulate import tabulate

    from hemcli.data import DATASETS

    rows = [(name, "x".join(map(str, info.input_shape)), info.num_classes,
             "disk (streamed)" if info.streamed else "memory", info.files) for name, info in DATASETS.items()]
    _emit(tabulate(rows, headers=["dataset", "images", "classes", "held in", "files under the data root"],
                   tablefmt="github"))


def _shown(value) -> str:
    """A default as a recipe would spell it: 0.00147911 rather than 0.0014791083881682072, null for None."""
    if value is None:
        return "null"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _click_classes(name: str) -> tuple[type, ...]:
    """``name`` from typer's vendored click (typer >= 0.20) and from click itself (older typer)."""
    found = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


class _StdoutClosed(Exception):
    """The reader of our stdout went away (``hem report ... | head``), or there was none (``>&-``)."""


# The real stdout while ``_results_only`` sends everything else printed to stderr; None outside
_results_stream = None
# hem was started with its stdout closed (``hem classify >&-``): fd 1 holds /dev/null (see _guard_streams)
_stdout_was_closed = False


@contextlib.contextmanager
def _results_only():
    """While a command works, ``print`` (a library's, e.g. Avalanche's "Mapping cpu to cpu") goes to
    stderr; ``_emit`` still writes to the real stdout. Worker processes do the same at their start
    (``sweep.backends.local``)."""
    global _results_stream
    if _results_stream is not None:  # nested: already redirected
        yield
        return
    _results_stream = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _results_stream = None


def _emit(text: str) -> None:
    """Machine-readable output to stdout; a full disk or a closed pipe is handled, not a traceback."""
    stream = _results_stream or sys.stdout
    if stream is None or _stdout_was_closed:
        raise _StdoutClosed
    try:
        stream.write(text + "\n")
        stream.flush()
    except OSError as err:
        _discard_stdout(stream)
        if isinstance(err, BrokenPipeError):
            raise _StdoutClosed from None
        raise HemError(f"cannot write the output: {err.strerror or err}") from None


def _discard_stdout(stream) -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test's capture)
        pass


def _guard_streams() -> None:
    """A closed stdin, stdout or stderr (``>&-``) gets /dev/null at its descriptor. Otherwise the next
    file hem opens (a checkpoint) would get descriptor 1 or 2, and whatever is printed would be
    written into it. A closed stdout is remembered: results are written, then exit 141 (as SIGPIPE)."""
    global _stdout_was_closed
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:  # the lowest free descriptor is taken: fd itself, as the lower ones are open
                os.dup2(opened, fd)
                os.close(opened)
            if fd == 1:
                _stdout_was_closed = True
            if fd == 2:
                sys.stderr = open(fd, "w", closefd=False)  # print(file=None) would otherwise write to stdout


@contextlib.contextmanager
def _sigterm_unwinds():
    """SIGTERM raises ``Terminated`` (a KeyboardInterrupt) in the main thread for the command's
    duration, so it ends a run as Ctrl-C does: lock released, checkpoint kept, the resume hint."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(text: object) -> str:
    return " ".join(str(text).split("\n"))


def main(argv: list[str] | None = None) -> int:
    """Entry point: every error becomes one line on stderr with its exit code, never a traceback.

    HemError: bad input (2), or a run that failed (1) or was interrupted (130). Anything else is a
    bug in hem: one line saying so (exit 1), and the traceback with HEM_DEBUG=1.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with _sigterm_unwinds():
            code = app(args=args or ["--help"], prog_name="hem", standalone_mode=False)
    except HemError as err:
        print(f"{err.prefix}{_one_line(err)}", file=sys.stderr)
        return err.exit_code
    except _click_classes("ClickException") as err:
        print(f"hem: error: {_one_line(err.format_message())}", file=sys.stderr)
        return err.exit_code
    except (*_click_classes("Abort"), KeyboardInterrupt) as err:
        # click turns a KeyboardInterrupt outside a run into Abort, the cause kept
        code = 143 if isinstance(err, Terminated) or isinstance(err.__cause__, Terminated) else 130
    except _StdoutClosed:
        return 141  # as if killed by SIGPIPE, what a C tool in the same pipe would report
    except Exception as err:  # the safety net: a bug must still end in one line
        if os.environ.get("HEM_DEBUG"):
            raise
        print(f"hem: internal error: {type(err).__name__}: {_one_line(err)} "
              "(HEM_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    if code in (130, 143):  # typer turns Ctrl-C outside a run into Exit(130), silently
        print(f"hem: {'interrupted' if code == 130 else 'terminated'}", file=sys.stderr)
    return code if isinstance(code, int) else 0


def entry() -> None:
    _guard_streams()
    sys.exit(main())


if __name__ == "__main__":
    entry()
