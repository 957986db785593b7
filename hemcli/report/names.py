"""What a report calls a metric (its display name with unit and better direction, its group), which
metrics of a group are the headline ones, and which ``--metrics`` selects.

Every metric a result can hold is named here, once: the evaluation suite's
(``hemcli.evaluation.suite``: ``clean_accuracy``, ``class_<j>_accuracy`` and ``<many|medium|few>_shot_accuracy``,
``corrupt_accuracy``, ``unknown_<auroc|fpr95>_<score>_<real|synthetic|all>``,
``dar_<score>_<linf|l2|mean>``, ``robust_accuracy_<linf|l2>``, ``ece``, ``nll``, ``brier``), the
continual task's (``hemcli.continual.measure.matrix_metrics``) and the segment task's
(``hemcli.tasks.segment``). A metric not named here (a plug-in's) keeps its key as its name, is in
the group ``other`` and is always shown. The better direction comes from ``lower_is_better`` alone,
so the arrow in a name and the bold best mean of the tables cannot disagree.
"""
from __future__ import annotations

import re
from typing import NamedTuple, Sequence

from hemcli.errors import HemError

# group -> what a figure of it is about; the order is the order of columns and figures
GROUPS = {
    "clean": "Clean accuracy",
    "shots": "Accuracy by class frequency (long tail)",
    "corrupt": "Accuracy under corruptions",
    "ood": "Unknown-class rejection",
    "dar": "Detection accuracy rate under AutoAttack (DAR)",
    "robust": "Robust accuracy under AutoAttack",
    "calibration": "Calibration",
    "continual": "Continual learning",
    "segment": "Segmentation",
    "other": "Other metrics",
}
# names --metrics takes for several groups at once
GROUP_ALIASES = {"attack": ("dar", "robust")}
# what writes a group's metrics, for the error that finds none
MEASURED_BY = {"shots": "--eval shots", "corrupt": "--eval corrupt", "ood": "--eval ood", "dar": "--eval attack",
               "robust": "--eval attack", "attack": "--eval attack", "calibration": "--eval calibration",
               "continual": "hem continual", "segment": "hem segment"}

SCORES = {"msp": "MSP", "mls": "MLS", "energy": "energy", "gen": "GEN"}
UNKNOWN_SETS = {"all": "all unknown sets", "real": "real unknown sets", "synthetic": "synthetic unknown sets"}
NORMS = {"linf": "ℓ∞", "l2": "ℓ2", "mean": "mean of ℓ∞ and ℓ2"}
HEADLINE_SCORE = "msp"  # the paper's default confidence score

# key -> (group, label, unit); units: "%" (accuracies and rates in percent), "pp" (a difference of two
# accuracies, in percentage points), "nats", or "" (none)
FIXED = {
    "clean_accuracy": ("clean", "clean accuracy", "%"),
    "many_shot_accuracy": ("shots", "many-shot accuracy", "%"),
    "medium_shot_accuracy": ("shots", "medium-shot accuracy", "%"),
    "few_shot_accuracy": ("shots", "few-shot accuracy", "%"),
    "corrupt_accuracy": ("corrupt", "corruption accuracy, mean", "%"),
    "ece": ("calibration", "ECE", "%"),
    "nll": ("calibration", "NLL", "nats"),
    "brier": ("calibration", "Brier score", ""),
    "final_accuracy": ("continual", "final accuracy", "%"),
    "last_experience_accuracy": ("continual", "last-experience accuracy", "%"),
    "average_forgetting": ("continual", "average forgetting", "pp"),
    "backward_transfer": ("continual", "backward transfer", "pp"),
    "mean_iou": ("segment", "mIoU", "%"),
    "pixel_accuracy": ("segment", "pixel accuracy", "%"),
}
# The headline of a group: what `hem report` shows without --metrics (ood and dar: see headline_metrics)
HEADLINE = {"clean_accuracy", "many_shot_accuracy", "medium_shot_accuracy", "few_shot_accuracy",
            "corrupt_accuracy", "ece", "final_accuracy", "average_forgetting", "mean_iou"}

_OOD = re.compile(r"unknown_(auroc|fpr95)_([a-z0-9]+)_(real|synthetic|all)")
_DAR = re.compile(r"dar_([a-z0-9]+)_(linf|l2|mean)")
_ROBUST = re.compile(r"robust_accuracy_(linf|l2)")
_CLASS = re.compile(r"class_(\d+)_accuracy")
ARROW_UP, ARROW_DOWN = "↑", "↓"


class MetricName(NamedTuple):
    """A metric as people read it: ``label`` ("AUROC, MSP, all unknown sets"), ``unit`` ("%", "pp",
    "nats" or ""), ``group`` (a key of ``GROUPS``) and, for ood and dar, the confidence ``score``."""

    key: str
    group: str
    label: str
    unit: str
    score: str | None = None
    detail: str | None = None  # ood: the unknown sets (real, synthetic, all); dar: the norm

    @property
    def arrow(self) -> str:
        return ARROW_DOWN if lower_is_better(self.key) else ARROW_UP

    @property
    def display(self) -> str:
        """``"ECE (%) ↓"``: the label, the unit in brackets and the better direction."""
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.label}{unit} {self.arrow}"

    @property
    def delta_unit(self) -> str:
        """The unit of a difference of two values: percentage points for a percentage."""
        return "pp" if self.unit == "%" else self.unit


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is the better one: errors, losses, forgetting, calibration error
    (``ece``), negative log-likelihood (``nll``), Brier score and false-positive rates (a word starting
    ``fpr``, e.g. ``unknown_fpr95_msp_all``); every other metric (accuracy, AUROC, DAR, mIoU, ...) is
    better when higher."""
    name = metric.lower()
    words = name.split("_")
    return ("error" in name or "loss" in name or "forgetting" in name or name in ("ece", "nll", "brier")
            or any(word.startswith("fpr") for word in words))


def metric_name(key: str) -> MetricName:
    """The display name of the metric ``key``; an unknown key is its own label, in the group ``other``.

    Returns:
        MetricName: e.g. for ``unknown_fpr95_msp_all``: group ``ood``, label "FPR95, MSP, all unknown
        sets", unit "%", display "FPR95, MSP, all unknown sets (%) ↓".
    """
    if key in FIXED:
        return MetricName(key, *FIXED[key])
    found = _OOD.fullmatch(key)
    if found:
        measure, score, sets = found.groups()
        label = f"{'AUROC' if measure == 'auroc' else 'FPR95'}, {SCORES.get(score, score)}, {UNKNOWN_SETS[sets]}"
        return MetricName(key, "ood", label, "%", score, sets)
    found = _DAR.fullmatch(key)
    if found:
        score, norm = found.groups()
        return MetricName(key, "dar", f"DAR, {SCORES.get(score, score)}, {NORMS[norm]}", "%", score, norm)
    found = _ROBUST.fullmatch(key)
    if found:
        return MetricName(key, "robust", f"robust accuracy, {NORMS[found.group(1)]}", "%", None, found.group(1))
    found = _CLASS.fullmatch(key)
    if found:
        return MetricName(key, "shots", f"class {found.group(1)} accuracy", "%")
    return MetricName(key, "other", key, "")


def display_name(key: str) -> str:
    """``metric_name(key).display``: "clean accuracy (%) ↑", "ECE (%) ↓"."""
    return metric_name(key).display


def group_of(key: str) -> str:
    return metric_name(key).group


def in_group_order(keys: list[str]) -> list[str]:
    """``keys`` by group (in the order of ``GROUPS``), in their given order within a group."""
    order = {group: index for index, group in enumerate(GROUPS)}
    return sorted(keys, key=lambda key: order[group_of(key)])


def _headline_score(names: list[MetricName]) -> str | None:
    """msp where the results have it, else the first score they have."""
    scores = [name.score for name in names if name.score is not None]
    return HEADLINE_SCORE if HEADLINE_SCORE in scores else (scores[0] if scores else None)


def headline_metrics(present: list[str]) -> list[str]:
    """The metrics shown without ``--metrics``, in group order: per evaluation the numbers the paper leads
    with (``HEADLINE``), AUROC and FPR95 over all unknown sets and DAR averaged over the norms (each
    norm where only one was attacked) for the headline score (msp), and every metric of ``other``.
    Every metric when none of these is present."""
    names = [metric_name(key) for key in present]
    ood_score = _headline_score([name for name in names if name.group == "ood"])
    dar_names = [name for name in names if name.group == "dar"]
    dar_score = _headline_score(dar_names)
    dar_mean = any(name.score == dar_score and name.detail == "mean" for name in dar_names)
    chosen = [name.key for name in names
              if name.key in HEADLINE or name.group == "other"
              or (name.group == "ood" and name.score == ood_score and name.detail == "all")
              or (name.group == "dar" and name.score == dar_score and (name.detail == "mean" or not dar_mean))]
    return in_group_order(chosen or present)


ALL, HEADLINE_WORD = "all", "headline"
SHOWN_CHOICES = 10  # metric names an error lists


def _choices(present: list[str]) -> str:
    """The tail of an error about --metrics: some valid names and every group the results have."""
    headline = headline_metrics(present)
    names = headline + [key for key in in_group_order(present) if key not in headline]  # the likeliest first
    more = len(names) - SHOWN_CHOICES
    listed = ", ".join(names[:SHOWN_CHOICES]) + (f" and {more} more" if more > 0 else "")
    groups = [group for group in GROUPS if any(group_of(key) == group for key in present)]
    groups += [alias for alias, members in GROUP_ALIASES.items() if set(members) & set(groups)]
    return f"valid choices: {listed}; groups: {', '.join([ALL, HEADLINE_WORD, *groups])}"


def select_metrics(present: list[str], requested: str | Sequence[str] | None) -> list[str]:
    """The metric columns ``requested`` names, in that order: metric keys, group names (a key of
    ``GROUPS`` or ``GROUP_ALIASES``: its metrics in ``present`` order), ``headline``
    (``headline_metrics``) and ``all``, as a list or comma-separated; every metric, in group order,
    where ``requested`` is None.

    Raises:
        HemError: a name that is no metric of ``present`` and no group, or a group without metrics here.
    """
    if requested is None:
        return in_group_order(present)
    requested = [requested] if isinstance(requested, str) else requested
    items = [name.strip() for item in requested for name in item.split(",") if name.strip()]
    if not items:
        raise HemError(f"--metrics names no metric; present: {', '.join(present)}")
    chosen: list[str] = []
    for item in items:
        if item == ALL:
            chosen += in_group_order(present)
        elif item == HEADLINE_WORD:
            chosen += headline_metrics(present)
        elif item in present:
            chosen.append(item)
        elif item in GROUPS or item in GROUP_ALIASES:
            groups = GROUP_ALIASES.get(item, (item,))
            members = [key for key in present if group_of(key) in groups]
            if not members:
                how = f" ({MEASURED_BY[item]} measures them)" if item in MEASURED_BY else ""
                raise HemError(f"no {item} metrics in these results{how}; {_choices(present)}")
            chosen += members
        else:
            raise HemError(f"unknown metric {item!r}; {_choices(present)}")
    return list(dict.fromkeys(chosen))
