"""Measuring a network hem did not train: ``evaluate(model, dataset, evals, ...)``.

The network is measured by the same suite (``hemcli.evaluation.suite``) with the same evaluation
settings (the ``evaluation.*`` recipe keys, at the defaults hem's own runs use) as a finished run,
and the record it returns has the same schema as a run's result JSON. What cannot be known about
such a network is recorded as such: its loss is ``none``, it has no training history, and the
recipe holds no training keys, only where it came from (``recipe.external``).

``hem evaluate --weights FILE --arch A`` (``hemcli.tasks.evaluate_external``) loads a state_dict into
a registry network (``hemcli.evaluation.weights``) and measures it through ``measure`` below, so the
command and this function give the same numbers for the same network.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from hemcli.errors import HemError, unknown_name

# What a result records about a network whose training hem never saw
UNKNOWN_LOSS = "none"
PROBE_IMAGES = 2  # test images the network is run on before any measurement

if TYPE_CHECKING:  # torch is imported where a network is measured, not by `import hemcli.evaluation`
    from torch import nn


def recipe_fields() -> dict:
    """The recipe keys of an external network's measurement: the dataset, the device, which
    evaluations and how (``suite.evaluation_fields``: the same keys and defaults as a trained run)."""
    from hemcli.data import DATASETS
    from hemcli.engine.device import check_device_name
    from hemcli.evaluation.suite import evaluation_fields
    from hemcli.recipes import Field

    return {
        "task": Field("str", "classify", "the task whose evaluations measure the network", ("classify",)),
        "dataset.name": Field("str", "digits", "dataset", tuple(DATASETS)),
        "dataset.root": Field("str?", None, "data folder (default $HEM_DATA, else ./data)"),
        "dataset.download": Field("bool", True, "let torchvision download missing files"),
        "dataset.limit": Field("int?", None, "use at most this many images of each split (smoke runs)", minimum=1),
        "device": Field("str", "auto", "auto, cpu, cuda, cuda:N or mps", check=check_device_name),
        **evaluation_fields(),
    }


# Keys a command line may set for an external network (the rest of the schema has flags of its own)
SETTABLE = ("eval", "dataset.download", "dataset.limit")


def evaluation_recipe(flags: Mapping[str, object], sets: Iterable[str] = ()) -> dict:
    """The checked recipe of a measurement: the schema's defaults <- ``flags`` (dotted keys) <-
    ``--set`` assignments; a HemError names a bad key or value. Seeded with 0, as no run is."""
    from hemcli import recipes
    from hemcli.evaluation.suite import evaluation_names

    cfg = recipes.resolve(recipe_fields(), "classify", flags=flags, sets=list(sets))
    return {**cfg, "eval": evaluation_names(cfg["eval"]), "seed": 0}


def recipe_of(cfg: dict, arch: str, source: Mapping[str, object]) -> dict:
    """The recipe a result records: the measurement's, the network (``model.arch``), the loss as
    unknown, and ``external``: the ``weights`` file and its ``sha256`` where the network was loaded
    from one, the ``model`` factory (or class) where it is not a registry network."""
    return {**cfg, "model": {"arch": arch}, "loss": {"name": UNKNOWN_LOSS, "params": {}}, "external": dict(source)}


def dataset_in_memory(cfg: dict):
    """The dataset of ``cfg`` held in memory (its ``dataset.limit`` part); a set streamed from disk is
    refused, as ``hem evaluate`` refuses one for a finished run."""
    from hemcli.data import StreamData, limited, load_dataset

    name = cfg["dataset"]["name"]
    data = load_dataset(name, cfg["dataset"]["root"], cfg["dataset"]["download"])
    if isinstance(data, StreamData):
        raise HemError(f"dataset {name} streams from disk; hem evaluate measures a network on sets held in "
                       "memory only")
    return limited(data, cfg["dataset"]["limit"])


def check_outputs(model: nn.Module, data, dm, dataset: str) -> None:
    """Run ``model`` on ``PROBE_IMAGES`` test images of ``dataset`` (eval mode, no gradient) and check
    that it gives one row of ``data.num_classes`` logits per image; a HemError in one line otherwise."""
    import torch

    batch = data.test_x[:PROBE_IMAGES]
    shape = "x".join(str(side) for side in batch.shape)
    try:
        from hemcli.engine.predict import predict_logits
        with torch.no_grad():
            out = predict_logits(model, batch.to(dm.device), dm)
    except Exception as err:  # the user's network failed on our images: say how, in one line
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise HemError(f"the network cannot take {dataset} images (a batch of {shape}): "
                       f"{type(err).__name__}: {first}") from None
    if out.dim() != 2 or len(out) != len(batch):
        raise HemError(f"the network must give one row of logits per image; for a batch of {shape} it gave "
                       f"{'x'.join(map(str, out.shape)) or 'a scalar'}")
    if out.shape[1] != data.num_classes:
        raise HemError(f"the network gives {out.shape[1]} logits per image; dataset {dataset} has "
                       f"{data.num_classes} classes")


def measure(model: nn.Module, cfg: dict, data, dm, recipe: dict, quiet: bool = True,
            attack_state: Callable[[str], object] | None = None) -> dict:
    """Measure ``model`` (already on ``dm``'s device and checked) as ``cfg`` says; the result record."""
    from hemcli.engine.device import seed_everything
    from hemcli.evaluation.suite import Subject, evaluate as run_suite
    from hemcli.models import count_parameters
    from hemcli.runs.record import build_result, environment

    began = time.perf_counter()
    seed_everything(cfg["seed"])
    subject = Subject(model, data, cfg, dm, quiet=quiet, attack_state=attack_state)
    metrics, details, seconds = run_suite(subject, cfg["eval"])
    env = {**environment(dm.describe()), "parameters": count_parameters(model), "train_size": len(data.train_y),
           "test_size": len(data.test_y), "class_counts": data.class_counts()}
    timings = {"total_seconds": time.perf_counter() - began, "evaluation_seconds": seconds}
    return {**build_result(recipe, metrics, [], env, timings), "evaluation": details}


def evaluate(model: nn.Module, dataset: str = "digits", evals: Iterable[str] | str = ("clean",),
             data_root: str | None = None, device: str = "auto", *, quiet: bool = True, **settings) -> dict:
    r"""Measure any classifier with hem's evaluation suite, as hem measures its own runs.

    The network is moved to the device and put in eval mode (and in float32 for ``attack``). Before
    anything is measured it is run on two test images, which must give one row of logits per image
    with as many logits as the dataset has classes.

    Args:
        model (nn.Module): maps a batch of the dataset's images, floats in [0, 1] of shape
            ``(N, C, H, W)``, to logits ``(N, num_classes)``. Standardise inside the model if it
            was trained on standardised images.
        dataset (str): a dataset of hem's registry (``hem datasets``). Default: ``'digits'``
        evals (iterable of str, or a comma-separated str): the evaluations, of ``clean``, ``shots``,
            ``corrupt``, ``ood``, ``attack``, ``calibration``; ``clean`` is always measured.
            Default: ``('clean',)``
        data_root (str, optional): the data folder. Default: ``$HEM_DATA``, else ``./data``
        device (str): ``auto`` (cuda, mps, cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. Default: ``'auto'``
        quiet (bool): no progress lines on stderr. Default: ``True``
        **settings: the ``evaluation.*`` recipe keys without their prefix (``ood_samples=200``,
            ``attack_norms=['linf']``, ``scores=['msp']``...), at hem's defaults where not given.

    Shape:
        - what ``model`` is given: :math:`(N, C, H, W)`, the dataset's images as floats in [0, 1]
          (``(N, 1, 8, 8)`` for digits, ``(N, 3, 32, 32)`` for CIFAR).
        - what it must return: :math:`(N, K)` logits, K the dataset's class count.

    Returns:
        dict: the record a result JSON holds: ``metrics`` (flat; percentages except ``nll`` and
        ``brier``), ``evaluation`` (how each evaluation measured: sets, corruptions, settings),
        ``timings`` (seconds per evaluation), ``recipe`` (the settings used; ``loss.name`` is
        ``'none'``), ``environment``, ``schema_version``, ``task``, ``status``, ``created``.

    Raises:
        HemError: an unknown dataset, evaluation or setting, a bad value, missing data files, or
            a network whose outputs do not fit the dataset; one line naming the problem.

    Example::

        >>> from hemcli.evaluation import evaluate
        >>> from hemcli.models import build_model
        >>> net = build_model("mlp", (1, 8, 8), 10)   # or any nn.Module of your own
        >>> result = evaluate(net, "digits", evals=("clean", "calibration"), device="cpu")
        >>> sorted(result["metrics"])
        ['brier', 'clean_accuracy', 'ece', 'nll']
    """
    from hemcli.engine.device import DeviceManager
    from hemcli.evaluation.suite import preflight

    cfg = evaluation_recipe(api_flags(dataset, evals, data_root, device, settings))
    data = dataset_in_memory(cfg)
    dm = DeviceManager.from_config(cfg)
    preflight(cfg, data)
    model = dm.prepare_model(model)
    check_outputs(model, data, dm, cfg["dataset"]["name"])
    where = type(model).__module__ + "." + type(model).__qualname__
    return measure(model, cfg, data, dm, recipe_of(cfg, where, {"model": where}), quiet=quiet)


def api_flags(dataset: str, evals, data_root, device: str, settings: Mapping[str, object]) -> dict:
    """``evaluate``'s arguments as recipe keys; an unknown setting is refused with the valid ones."""
    from hemcli.evaluation.suite import evaluation_fields

    valid = [key.partition(".")[2] for key in evaluation_fields() if key.startswith("evaluation.")]
    for name in settings:
        if name not in valid:
            raise unknown_name("evaluation setting", name, valid)
    names = [part.strip() for part in evals.split(",")] if isinstance(evals, str) else list(evals)
    given = {f"evaluation.{key}": list(value) if isinstance(value, tuple) else value  # a recipe holds lists
             for key, value in settings.items()}
    return {"dataset.name": dataset, "dataset.root": None if data_root is None else str(data_root),
            "device": device, "eval": names, **given}
