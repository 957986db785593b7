"""AutoAttack (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks") for the DAR metric, run stage by stage so it resumes per batch.

The paper ran torchattacks' ``AutoAttack(model, norm, eps, version='standard', n_classes=C)``: the
stages APGD-CE, APGD-T, FAB-T and Square, each attacking only the images no earlier stage broke (its
``MultiAttack``). We build the same four torchattacks attacks and chain them ourselves, so that

- a batch's adversarial images depend only on the batch, the seed and the batch's index (every
  torchattacks stage re-seeds torch's global RNG with its ``seed`` when it starts, so earlier batches
  leave no trace; we fork the RNG so the caller's random stream is untouched too);
- the logits of finished batches are kept in a state file and a stopped attack resumes there;
- the official AutoAttack's step counts can be asked for (``strength="official"``).

Strengths (keyword arguments of each torchattacks class; everything not named is its default):

=========  =========================================  ===========================================
stage      "torchattacks" (its AutoAttack 'standard')  "official" (fra31/auto-attack 'standard')
=========  =========================================  ===========================================
apgd-ce    APGD loss='ce', n_restarts=1, steps=10      steps=100
apgd-t     APGDT n_restarts=1, steps=10, all C-1       steps=100, the 9 most likely other classes
           other classes as targets                    (C-1 when C <= 10)
fab-t      FAB multi_targeted, n_restarts=1, steps=10, steps=100, 9 targets as APGD-T
           C-1 targets
square     Square n_queries=5000, n_restarts=1,        n_queries=5000, p_init=0.8, and the square
           p-schedule rescaled to n_queries            size schedule not rescaled (resc_schedule=False)
=========  =========================================  ===========================================

torchattacks' APGDT and FAB take ``n_classes`` only to set ``n_target_classes = n_classes - 1`` and
then target the 2nd, 3rd, ... most likely classes; the official version caps this at 9 by setting
the same attribute, and so do we. With C = 10 both strengths use all 9 other classes; with C = 100
the torchattacks strength runs 99 targets per targeted stage (as the paper's code did), 11x the
official work. Step sizes, restarts, losses and the attacks' code are torchattacks' own in both
strengths: "official" means the official budget, not the official implementation.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from hemcli.errors import HemError, shown, unknown_name
from hemcli.progress import warn
from hemcli.fileio import write_atomic

NORMS = ("linf", "l2")
STRENGTHS = ("torchattacks", "official")
STAGES = ("apgd-ce", "apgd-t", "fab-t", "square")
OFFICIAL_STEPS = 100
OFFICIAL_TARGETS = 9
SQUARE_QUERIES = 5000
STATE_FORMAT = 1
_TORCHATTACKS_NORM = {"linf": "Linf", "l2": "L2"}


def stage_arguments(strength: str, n_classes: int) -> dict[str, dict]:
    """The keyword arguments of each stage's torchattacks class beyond model/norm/eps/seed (see the
    module's table), plus ``n_target_classes`` for the targeted stages (set as an attribute)."""
    if strength not in STRENGTHS:
        raise unknown_name("attack strength", strength, STRENGTHS)
    if strength == "torchattacks":
        targets, steps, square = n_classes - 1, {}, {}
    else:
        targets, steps = min(OFFICIAL_TARGETS, n_classes - 1), {"steps": OFFICIAL_STEPS}
        square = {"p_init": 0.8, "resc_schedule": False}
    return {
        "apgd-ce": {"loss": "ce", "n_restarts": 1, **steps},
        "apgd-t": {"n_classes": n_classes, "n_restarts": 1, "n_target_classes": targets, **steps},
        "fab-t": {"multi_targeted": True, "n_classes": n_classes, "n_restarts": 1,
                  "n_target_classes": targets, **steps},
        "square": {"n_queries": SQUARE_QUERIES, "n_restarts": 1, **square},
    }


def autoattack_stages(model: nn.Module, norm: str, eps: float, n_classes: int, strength: str = "torchattacks",
                      seed: int = 0) -> list[tuple[str, object]]:
    """AutoAttack 'standard' as ``[(name, torchattacks.Attack), ...]`` in the order apgd-ce, apgd-t,
    fab-t, square; ``norm`` is "linf" or "l2", ``strength`` "torchattacks" or "official"."""
    if norm not in NORMS:
        raise unknown_name("attack norm", norm, NORMS)
    arguments = stage_arguments(strength, n_classes)
    if n_classes < 4:  # APGD-T's targeted DLR loss divides by the gap to the 4th largest logit
        raise HemError(f"AutoAttack needs at least 4 classes (APGD-T's loss uses the 4 largest logits); "
                       f"got {n_classes}")
    import torchattacks  # 1 s to import: only when attacking

    classes = {"apgd-ce": torchattacks.APGD, "apgd-t": torchattacks.APGDT, "fab-t": torchattacks.FAB,
               "square": torchattacks.Square}
    stages = []
    for name in STAGES:
        kwargs = dict(arguments[name])
        targets = kwargs.pop("n_target_classes", None)
        stage = classes[name](model, norm=_TORCHATTACKS_NORM[norm], eps=eps, seed=seed, verbose=False, **kwargs)
        if targets is not None:
            stage.n_target_classes = targets
        stages.append((name, stage))
    return stages


@contextlib.contextmanager
def _attack_mode(model: nn.Module, device: torch.device):
    """Eval mode, float32 (no autocast), frozen weights (FAB's backward would otherwise fill every
    ``.grad``) and a forked RNG (the stages re-seed torch's global one); all restored on exit."""
    training = model.training
    frozen = [p for p in model.parameters() if p.requires_grad]
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    model.eval()
    try:
        for p in frozen:
            p.requires_grad_(False)
        with torch.random.fork_rng(devices=devices), torch.autocast(device.type, enabled=False):
            yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(training)


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's float32 logits (N, classes) under no_grad."""
    with torch.no_grad():
        return model(x).float()


def attack_with_logits(stages: list[tuple[str, object]], model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """``attack_batch``'s images, their logits and its unbroken counts (see there).

    The logits are those of the forward passes that judged each image (clean, or the batch of the
    stage that broke it), so their argmax is the verdict itself and no extra pass is needed."""
    adv = x.detach().clone()
    with _attack_mode(model, x.device):
        logits = _logits(model, x)
        unbroken = logits.argmax(1) == y
        counts = [int(unbroken.sum())]
        for _name, stage in stages:
            index = unbroken.nonzero().flatten()
            if len(index):
                if seed is not None:
                    stage.seed = seed
                found = stage(x[index], y[index]).detach()
                found_logits = _logits(model, found)
                hit = found_logits.argmax(1) != y[index]
                adv[index[hit]], logits[index[hit]] = found[hit], found_logits[hit]
                unbroken[index[hit]] = False
            counts.append(int(unbroken.sum()))
    return adv, logits, counts


def attack_batch(stages: list[tuple[str, object]], model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 seed: int | None = None, counts: list[int] | None = None) -> torch.Tensor:
    """Adversarial images (N, C, H, W) for one batch, as torchattacks' MultiAttack makes them.

    Each stage attacks the clean images of those still classified right; an image a stage breaks
    keeps that stage's adversarial example and leaves the pool; images misclassified clean come back
    unchanged. ``seed`` (when given) is set on every stage first, as AutoAttack gives all four the same
    seed. ``counts``, when given, gets the number of unbroken images appended: clean, then after each
    of the stages (a stage skipped because nothing was left still appends)."""
    adv, _logits_of_adv, found_counts = attack_with_logits(stages, model, x, y, seed)
    if counts is not None:
        counts.extend(found_counts)
    return adv


def settings_key(norm: str, eps: float, n_classes: int, strength: str, seed: int, batch_size: int,
                 y: torch.Tensor, settings: dict | None) -> str:
    """What a state must match to be resumed, as canonical JSON: the attack's settings, the sample
    count, a SHA-256 of the labels (a different subset of the same size differs), the caller's."""
    labels = hashlib.sha256(y.detach().cpu().to(torch.int64).numpy().tobytes()).hexdigest()
    attack = {"format": STATE_FORMAT, "norm": norm, "eps": float(eps), "n_classes": n_classes, "strength": strength,
              "seed": seed, "batch_size": batch_size, "samples": len(y), "labels_sha256": labels}
    return json.dumps({"attack": attack, "caller": settings or {}}, sort_keys=True, default=str)


def _empty_state(n_classes: int) -> dict:
    """No batch done yet."""
    return {"batches": 0, "logits": torch.empty(0, n_classes, dtype=torch.float32),
            "counts": torch.empty(0, len(STAGES) + 1, dtype=torch.int64), "seconds": 0.0}


def _valid_state(state: object, n_classes: int, batch_size: int, total: int) -> bool:
    """Whether a loaded state is whole: its batch count matches the rows of logits and counts."""
    if not isinstance(state, dict) or not isinstance(state.get("batches"), int):
        return False
    logits, counts, done = state.get("logits"), state.get("counts"), state["batches"]
    rows = min(done * batch_size, total)
    return (isinstance(state.get("settings"), str) and isinstance(state.get("seconds"), float)
            and isinstance(logits, torch.Tensor) and logits.dtype == torch.float32
            and tuple(logits.shape) == (rows, n_classes) and isinstance(counts, torch.Tensor)
            and counts.dtype == torch.int64 and tuple(counts.shape) == (done, len(STAGES) + 1)
            and 0 <= done <= math.ceil(total / batch_size))


def load_state(path: Path, key: str, n_classes: int, batch_size: int, total: int) -> dict:
    """The finished batches in ``path`` when it was written with the same settings ``key``; no file
    starts afresh, an unreadable one or one with other settings warns and starts afresh."""
    if not path.exists():
        return _empty_state(n_classes)
    from hemcli.fileio import load_weights_only

    try:
        state = load_weights_only(path)  # a planted pickle builds nothing; a FIFO is not waited on
    except Exception as err:  # a truncated or foreign file: any unpickling error means the same
        warn(f"cannot read the attack state {path} ({type(err).__name__}); attacking from the start")
        return _empty_state(n_classes)
    if not _valid_state(state, n_classes, batch_size, total):
        warn(f"the attack state {path} is incomplete or not an attack state; attacking from the start")
        return _empty_state(n_classes)
    if state["settings"] != key:
        warn(f"the attack state {path} was made with other settings; attacking from the start")
        return _empty_state(n_classes)
    return state


def save_state(path: Path, key: str, state: dict) -> None:
    """Write ``state`` (batches, logits, counts, seconds) and the settings ``key`` atomically."""
    data = {**state, "settings": key}
    write_atomic(path, lambda handle: torch.save(data, handle), what="attack state")


def clear_state(path: Path | None) -> None:
    """Remove an attack's state file once its result is safely written elsewhere."""
    if path is not None:
        path.unlink(missing_ok=True)


def _check_inputs(x: torch.Tensor, y: torch.Tensor, eps: float, batch_size: int) -> None:
    """One-line HemErrors for inputs the attacks would fail on obscurely."""
    if x.dim() != 4 or y.dim() != 1 or len(x) != len(y):
        raise HemError(f"AutoAttack needs images (N, C, H, W) and labels (N,); "
                       f"got {tuple(x.shape)} and {tuple(y.shape)}")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise HemError(f"attack eps must be a positive number; got {shown(eps)}")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise HemError(f"attack batch size must be a positive integer; got {shown(batch_size)}")
    if len(x) and (x.min() < 0 or x.max() > 1):  # the attacks clip to [0, 1]: other scales break silently
        raise HemError(f"AutoAttack needs pixels in [0, 1]; got {x.min().item():.4g} to {x.max().item():.4g}")


def _device(model: nn.Module, x: torch.Tensor) -> torch.device:
    """Where the model's weights are (x's device for a weightless model): batches move there."""
    first = next(model.parameters(), None)
    return first.device if first is not None else x.device


def run_autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str, eps: float, n_classes: int,
                   strength: str = "torchattacks", seed: int = 0, batch_size: int = 500,
                   state_path: Path | None = None, settings: dict | None = None,
                   progress: Callable[[int, int], None] | None = None) -> dict:
    """AutoAttack on all of ``x`` (N, C, H, W) in [0, 1] with labels ``y`` (N,), batch by batch.

    Batch ``b`` (images ``b*batch_size`` onwards) is attacked with seed ``seed + b``. Returns
    ``{"logits": (N, n_classes) float32 CPU tensor of the adversarial images, "seconds": attack wall
    time including that of resumed batches, "resumed_batches": batches taken from the state,
    "robust": {"clean": n, "apgd-ce": n, ...} images still classified right after each stage}``.
    With ``state_path``, the finished batches are saved after each batch and resumed on a re-run
    with the same settings (``settings`` joins the attack's own in that comparison). The model must
    hold float32 weights (``model.float()`` after mixed-precision training); batches move to its
    device, and it runs in eval mode without autocast."""
    _check_inputs(x, y, eps, batch_size)
    stages = autoattack_stages(model, norm, eps, n_classes, strength, seed)
    total, device = len(x), _device(model, x)
    key = settings_key(norm, eps, n_classes, strength, seed, batch_size, y, settings)
    state = load_state(state_path, key, n_classes, batch_size, total) if state_path else _empty_state(n_classes)
    resumed, logits, counts = state["batches"], [state["logits"]], [state["counts"]]
    if resumed and progress:
        progress(min(resumed * batch_size, total), total)
    start = time.perf_counter()
    for b in range(resumed, math.ceil(total / batch_size)):
        xb = x[b * batch_size:(b + 1) * batch_size].to(device, torch.float32)
        yb = y[b * batch_size:(b + 1) * batch_size].to(device, torch.int64)
        _adv, batch_logits, batch_counts = attack_with_logits(stages, model, xb, yb, seed=seed + b)
        logits.append(batch_logits.cpu())
        counts.append(torch.tensor([batch_counts], dtype=torch.int64))
        if state_path:
            logits, counts = [torch.cat(logits)], [torch.cat(counts)]
            save_state(state_path, key, {"batches": b + 1, "logits": logits[0], "counts": counts[0],
                                         "seconds": state["seconds"] + time.perf_counter() - start})
        if progress:
            progress(min((b + 1) * batch_size, total), total)
    robust = torch.cat(counts).sum(0).tolist()
    return {"logits": torch.cat(logits), "seconds": state["seconds"] + time.perf_counter() - start,
            "resumed_batches": resumed, "robust": dict(zip(("clean",) + STAGES, robust))}
