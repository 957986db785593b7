"""The evaluations of the paper's Appendix B.1.2 run on one trained classifier: ``evaluate(subject, names)``.

Every evaluation returns flat metrics (percentages, except NLL and Brier score) for ``hem report``
and a record of how it measured (sets, corruptions, settings). The clean test logits are computed
once and shared: calibration, the known side of unknown-class rejection and the DAR threshold all
come from them. Conventions, stated in the result too: for rejection the known test set is the
positive class, and a higher score means "more likely known". Scores are computed from the logits in
float64: in float32 the softmax of a confident network rounds to exactly 1.0 for many images, and
those ties, not the network, would then decide part of the AUROC.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from hemcli.progress import Counter, warn
from hemcli.recipes import Field

EVALUATIONS = ("clean", "shots", "corrupt", "ood", "attack", "calibration")
# Results written before the evaluation suite named the one evaluation there was this way.
LEGACY_EVALUATIONS = {"clean_accuracy": "clean"}
ATTACK_NORMS = ("linf", "l2")
ATTACK_STRENGTHS = ("torchattacks", "official")
CALIBRATION_BINS = 15
CONVENTION = {"positive": "known test set", "higher_score": "more likely known", "scores_from": "float64 logits",
              "units": "AUROC, FPR95, DAR, accuracies and ECE in percent"}


def _score_names() -> list[str]:
    from hemcli.metrics import SCORES
    return list(SCORES)


def evaluation_fields() -> dict[str, Field]:
    """Recipe keys of the evaluations; none changes what is trained (``runs.condition.RUN_PREFIXES``)."""
    return {
        "eval": Field("list[str]", ["clean"], "evaluations after training (clean is always measured)",
                      EVALUATIONS),
        "evaluation.seed": Field("int", 0, "seed of generated corruptions, synthetic unknown sets, the "
                                 "attacked subset and attack starts: the same for every run", minimum=0),
        "evaluation.scores": Field("list[str]", ["msp", "mls", "energy", "gen"],
                                   "confidence scores for rejection and DAR (msp first: the headline)", _score_names),
        "evaluation.ood_samples": Field("int", 10000, "images per synthetic unknown set, at most per real one",
                                        minimum=1),
        "evaluation.corrupt_samples": Field("int?", None, "at most this many test images per corruption and "
                                            "severity (null: all)", minimum=1),
        "evaluation.workers": Field("int?", None, "processes generating corruptions (null: one per core)", minimum=1),
        "evaluation.attack_samples": Field("int", 10000, "test images attacked (the paper: 10000)", minimum=1),
        "evaluation.attack_batch_size": Field("int", 500, "images per attack batch (the resume step)", minimum=1),
        "evaluation.attack_strength": Field("str", "torchattacks", "torchattacks (its step counts, as the paper "
                                            "ran) or official (AutoAttack's)", ATTACK_STRENGTHS),
        "evaluation.attack_norms": Field("list[str]", list(ATTACK_NORMS), "AutoAttack threat models", ATTACK_NORMS),
        "evaluation.attack_eps_linf": Field("float?", None, "l-inf budget (null: the paper's for the dataset)",
                                            minimum=0),
        "evaluation.attack_eps_l2": Field("float?", None, "l2 budget (null: the paper's for the dataset)", minimum=0),
        "evaluation.accept": Field("float", 0.95, "share of correctly classified clean test images the DAR "
                                   "threshold accepts", minimum=0.01, maximum=1),
    }


def evaluation_names(names) -> list[str]:
    """``names`` in the order they run (clean first, always), legacy names read."""
    wanted = {LEGACY_EVALUATIONS.get(name, name) for name in names} | {"clean"}
    return [name for name in EVALUATIONS if name in wanted]


@dataclass
class Subject:
    """A trained model and what it is measured on; ``attack_state(norm)`` is where an attack keeps
    its finished batches (None: not resumable)."""

    model: nn.Module
    data: object  # hemcli.data.ArrayData
    cfg: dict
    dm: object  # hemcli.engine.device.DeviceManager
    quiet: bool = False
    attack_state: Callable[[str], Path] | None = None
    test_logits: torch.Tensor | None = None

    @property
    def settings(self) -> dict:
        return self.cfg["evaluation"]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        from hemcli.engine.predict import predict_logits
        return predict_logits(self.model, x.to(self.dm.device), self.dm).cpu()


def evaluate(subject: Subject, names) -> tuple[dict, dict, dict]:
    """Run ``names``; returns (metrics, details by evaluation, seconds by evaluation)."""
    metrics, details, seconds = {}, {}, {}
    for name in evaluation_names(names):
        tick = time.perf_counter()
        if subject.test_logits is None:
            subject.test_logits = subject.logits(subject.data.test_x)
        found, record = EVALUATORS[name](subject)
        metrics.update(found)
        if record:
            details[name] = record
        seconds[name] = time.perf_counter() - tick
    return metrics, details, seconds


def clean(subject: Subject) -> tuple[dict, dict]:
    correct = (subject.test_logits.argmax(1) == subject.data.test_y).sum().item()
    return {"clean_accuracy": 100.0 * correct / len(subject.data.test_y)}, {}


RAREST_SHOWN = 2  # classes with the fewest training samples whose accuracy is a metric of its own


def shots(subject: Subject) -> tuple[dict, dict]:
    """Accuracy over the many-, medium- and few-shot classes (more than 100, 20 to 100, fewer than 20
    training samples), of the ``RAREST_SHOWN`` rarest classes (``class_<j>_accuracy``) and, in the
    record, of every class; a group without classes has no metric, and the record says so."""
    from hemcli.data.longtail import FEW_BELOW, MANY_ABOVE, shot_groups

    labels = subject.data.test_y
    hits = (subject.test_logits.argmax(1) == labels).double()
    counts = subject.data.class_counts()
    per_class = [100.0 * hits[labels == j].mean().item() if (labels == j).any() else None
                 for j in range(len(counts))]
    metrics, empty = {}, []
    rarest = sorted(range(len(counts)), key=lambda j: (counts[j], -j))[:RAREST_SHOWN]
    for j in sorted(rarest, reverse=True):  # the rarest classes' own accuracies, as report columns
        if per_class[j] is not None:
            metrics[f"class_{j}_accuracy"] = per_class[j]
    for group, members in shot_groups(counts).items():
        tested = torch.isin(labels, torch.tensor(members, dtype=labels.dtype))
        if members and tested.any():
            metrics[f"{group}_shot_accuracy"] = 100.0 * hits[tested].mean().item()
        else:
            empty.append(group)
    return metrics, {"per_class_accuracy": per_class, "train_counts": counts, "empty_groups": empty,
                     "groups": shot_groups(counts),
                     "convention": f"many: > {MANY_ABOVE} training samples, medium: {FEW_BELOW}-{MANY_ABOVE}, "
                                   f"few: < {FEW_BELOW}"}


def calibration(subject: Subject) -> tuple[dict, dict]:
    from hemcli.metrics import brier_score, expected_calibration_error, negative_log_likelihood

    logits, labels = subject.test_logits, subject.data.test_y
    probs = logits.softmax(1)
    return ({"ece": 100.0 * expected_calibration_error(probs, labels, bins=CALIBRATION_BINS),
             "nll": negative_log_likelihood(logits, labels), "brier": brier_score(probs, labels)},
            {"bins": CALIBRATION_BINS, "ece_norm": "l1, equal-width bins on the max softmax probability"})


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# ------------------------------------------------------------------------------- corruptions


def corrupt(subject: Subject) -> tuple[dict, dict]:
    from hemcli.data import data_root
    from hemcli.data.corruptions import corruption_sets

    cfg, settings = subject.cfg, subject.settings
    source, sets = corruption_sets(cfg["dataset"]["name"], subject.data.test_x, subject.data.test_y,
                                   data_root(cfg["dataset"]["root"]), seed=settings["seed"],
                                   samples=settings["corrupt_samples"], workers=settings["workers"],
                                   progress=_counter(subject, "corruption sets", _set_size(subject)))
    accuracy: dict[tuple[str, int], float] = {}
    counts = set()
    for found in sets:
        predicted = subject.logits(found.images).argmax(1)
        accuracy[(found.corruption, found.severity)] = 100.0 * (predicted == found.labels).sum().item() / len(predicted)
        counts.add(len(found.labels))
    if not accuracy:
        raise RuntimeError("no corruption set was produced")
    corruptions = sorted({name for name, _ in accuracy})
    severities = sorted({level for _, level in accuracy})
    by_corruption = {name: _mean(v for (n, _), v in accuracy.items() if n == name) for name in corruptions}
    return ({"corrupt_accuracy": _mean(accuracy.values())},
            {"source": source, "corruptions": corruptions, "severities": severities,
             "images_per_set": sorted(counts), "seed": settings["seed"],
             "accuracy_by_corruption": by_corruption,
             "accuracy_by_severity": {str(s): _mean(v for (_, lv), v in accuracy.items() if lv == s)
                                      for s in severities}})


def _set_size(subject: Subject) -> int:
    """Images in each corruption set: the test set, or ``corrupt_samples`` of it."""
    samples, total = subject.settings["corrupt_samples"], len(subject.data.test_y)
    return total if samples is None else min(samples, total)


def _counter(subject: Subject, what: str, per_item: float = 1.0) -> Callable[[int, int], None]:
    """``show(done, total)``: a progress line with images/s and an ETA, at most one per 5 s on a
    terminal, per ``--progress-every`` in a log (``hemcli.progress.Counter``); ``per_item``: images
    in one counted item."""
    return Counter(what, "images", per_item, quiet=subject.quiet)


# ------------------------------------------------------------------------------- unknown classes


def preflight(cfg: dict, data) -> None:
    """Open and check every file the evaluations of ``cfg["eval"]`` will read, before anything is
    trained or written: the real unknown sets of ``ood`` (read once and kept on ``data``: at most a
    few arrays of ~100 MB, or lists of image files) and a released corruption benchmark of
    ``corrupt`` (its headers only; nothing is generated). The other evaluations read no file."""
    names = evaluation_names(cfg["eval"])
    if "ood" not in names and "corrupt" not in names:
        return
    from hemcli.data import data_root

    root = data_root(cfg["dataset"]["root"])
    if "ood" in names:
        from hemcli.data.unknown import real_unknown_sets
        data.real_unknown = real_unknown_sets(cfg["dataset"]["name"], root)
    if "corrupt" in names:
        from hemcli.data.corruptions import check_corruption_inputs
        check_corruption_inputs(cfg["dataset"]["name"], data.test_x, data.test_y, root)


def _unknown_sets(subject: Subject):
    """(name, group, images or None, source) for every unknown set of the training set, one at a time,
    so only one set is in memory as float images."""
    from hemcli.data import data_root
    from hemcli.data.unknown import SYNTHETIC_SETS, real_unknown_sets, synthetic_set

    data, settings = subject.data, subject.settings
    n, seed = settings["ood_samples"], settings["seed"]
    test_x = data.test_x
    for name in SYNTHETIC_SETS:
        yield name, "synthetic", synthetic_set(name, test_x, n=n, seed=seed), f"generated (seed {seed})"
    if data.held_out_x is not None:
        order = torch.randperm(len(data.held_out_x), generator=torch.Generator().manual_seed(seed))[:n]
        yield "held-out-classes", "real", data.held_out_x[order.sort().values], "the dataset's held-out classes"
    found = getattr(data, "real_unknown", None)
    if found is None:  # not found by a preflight (a Subject made without one)
        found = real_unknown_sets(subject.cfg["dataset"]["name"], data_root(subject.cfg["dataset"]["root"]))
    for name, real in found.items():
        images = None if real is None else real.load(test_x.shape[-1], test_x.shape[1], n=n, seed=seed)
        yield name, "real", images, None if real is None else real.source


def ood(subject: Subject) -> tuple[dict, dict]:
    from hemcli.metrics import auroc, fpr_at_tpr, score_fn

    scores = subject.settings["scores"]
    known = {score: score_fn(score)(subject.test_logits.double()) for score in scores}
    per_set, sets, skipped = {score: {} for score in scores}, {}, {}
    for name, group, images, source in _unknown_sets(subject):
        if images is None:
            warn(f"unknown set {name} not found under the data root; skipped (recorded in the result)")
            skipped[name] = "files not found under the data root"
            continue
        logits = subject.logits(images).double()
        sets[name] = {"group": group, "images": len(images), "source": source}
        for score in scores:
            unknown = score_fn(score)(logits)
            per_set[score][name] = {"auroc": 100.0 * auroc(known[score], unknown),
                                    "fpr95": 100.0 * fpr_at_tpr(known[score], unknown, tpr=0.95)}
    metrics = {}
    for score in scores:
        for group in ("real", "synthetic", "all"):
            members = [name for name in sets if group == "all" or sets[name]["group"] == group]
            if members:
                for measure in ("auroc", "fpr95"):
                    metrics[f"unknown_{measure}_{score}_{group}"] = _mean(per_set[score][m][measure] for m in members)
    return metrics, {**CONVENTION, "sets": sets, "skipped": skipped, "scores": scores,
                     "samples": subject.settings["ood_samples"], "seed": subject.settings["seed"],
                     "per_set": per_set}


# ------------------------------------------------------------------------------- AutoAttack DAR


def attack_budget(cfg: dict, norm: str) -> float:
    from hemcli.data import dataset_info

    chosen = cfg["evaluation"][f"attack_eps_{norm}"]
    linf, l2 = dataset_info(cfg["dataset"]["name"]).attack_eps
    return chosen if chosen is not None else {"linf": linf, "l2": l2}[norm]


def attacked_subset(subject: Subject) -> torch.Tensor:
    """The indices of the attacked test images: a seeded subset (all when there are fewer), so CE and
    HEM runs are attacked on the same images."""
    total = len(subject.data.test_y)
    count = min(subject.settings["attack_samples"], total)
    order = torch.randperm(total, generator=torch.Generator().manual_seed(subject.settings["seed"]))
    return order[:count].sort().values


def attack(subject: Subject) -> tuple[dict, dict]:
    import torchattacks

    from hemcli.evaluation.attack import run_autoattack
    from hemcli.metrics import dar, score_fn

    settings, data = subject.settings, subject.data
    index = attacked_subset(subject)
    x, y = data.test_x[index], data.test_y[index]
    clean_correct = subject.test_logits.argmax(1) == data.test_y
    scores = settings["scores"]
    metrics, runs = {}, {}
    subject.model.float()  # attacks in float32 even when training used AMP (no autocast below)
    for norm in settings["attack_norms"]:
        eps = attack_budget(subject.cfg, norm)
        run_settings = {"norm": norm, "eps": eps, "strength": settings["attack_strength"], "seed": settings["seed"],
                        "batch_size": settings["attack_batch_size"], "images": index.tolist()}
        found = run_autoattack(subject.model, x.to(subject.dm.device), y.to(subject.dm.device), norm, eps,
                               data.num_classes, strength=settings["attack_strength"], seed=settings["seed"],
                               batch_size=settings["attack_batch_size"],
                               state_path=subject.attack_state(norm) if subject.attack_state else None,
                               settings=run_settings, progress=_counter(subject, f"attack {norm} images"))
        adv_logits = found["logits"].double()
        adv_correct = adv_logits.argmax(1) == y
        metrics[f"robust_accuracy_{norm}"] = 100.0 * adv_correct.sum().item() / len(adv_correct)
        for score in scores:
            fn = score_fn(score)
            metrics[f"dar_{score}_{norm}"] = 100.0 * dar(fn(subject.test_logits.double()), clean_correct, fn(adv_logits),
                                                         adv_correct, accept=settings["accept"])
        runs[norm] = {"eps": eps, "seconds": found["seconds"], "resumed_batches": found["resumed_batches"],
                      "still_correct_after": found.get("robust")}
    for score in scores if len(runs) > 1 else ():
        metrics[f"dar_{score}_mean"] = _mean(metrics[f"dar_{score}_{norm}"] for norm in runs)
    return metrics, {**CONVENTION, "attack": "AutoAttack standard (apgd-ce, apgd-t, fab-t, square), torchattacks "
                     f"{torchattacks.__version__}", "strength": settings["attack_strength"], "norms": runs,
                     "images": len(index), "seed": settings["seed"], "accept": settings["accept"],
                     "threshold_from": "correctly classified clean test images (whole test set)", "scores": scores}


EVALUATORS = {"clean": clean, "shots": shots, "corrupt": corrupt, "ood": ood, "attack": attack, "calibration": calibration}
