"""``hem longtail``: ``classify`` on a long-tailed training subset (paper Table 5, Appendix B.2).

The training set keeps the first ``floor(s_j * f ** j)`` samples of class j (``hemcli.data.longtail``),
with f from ``longtail.imbalance`` (R = largest / smallest class) or given as ``longtail.factor``; the
test set stays balanced. The losses are built from the subset's class counts (``la``'s log-prior,
``hem``'s per-class margins, ``hem-``'s shared margin). ``sampling: oversample`` draws every class as
often as the largest (Appendix E.1). The result records the subset's counts, f, the ratio and the
loss's margins; ``eval`` gains ``shots`` (many / medium / few-shot and per-class accuracy).
"""
from __future__ import annotations

from pathlib import Path

from hemcli.errors import HemError
from hemcli.recipes import Field
from hemcli.tasks import classify


# Long-tailed sets that come as lists of their own (no factor applies)
LISTED = ("imagenet-lt",)


def schema() -> dict[str, Field]:
    fields = classify.schema()
    fields["task"] = Field("str", "longtail", "the task this recipe is for", ("longtail",))
    fields["eval"] = Field("list[str]", ["clean", "shots"], fields["eval"].help, fields["eval"].choices)
    fields.update({
        "longtail.imbalance": Field("float", 10.0, "largest / smallest class count R; f = R ** (-1 / (C - 1))",
                                    minimum=1),
        "longtail.factor": Field("float?", None, "f itself (class j keeps floor(s_j f^j)); replaces imbalance",
                                 minimum=0, maximum=1),
    })
    return fields


def factor(cfg: dict, num_classes: int) -> float:
    from hemcli.data.longtail import check_factor, factor_from_ratio

    given = cfg["longtail"]["factor"]
    return check_factor(given) if given is not None else factor_from_ratio(cfg["longtail"]["imbalance"],
                                                                           num_classes)


def check(cfg: dict) -> None:
    from hemcli.data import dataset_info

    classify.check(cfg)
    info = dataset_info(cfg["dataset"]["name"])
    if info.name in LISTED:
        return
    if info.streamed:
        raise HemError(f"dataset {info.name} streams from disk; a long-tailed subset is cut from a set held in "
                       f"memory, or comes as list files: {', '.join(LISTED)}")
    factor(cfg, info.num_classes)


def subset(data, f: float):
    """``data`` with its training set cut to the long-tailed subset for factor f."""
    from hemcli.data import ArrayData
    from hemcli.data.longtail import longtail_indices

    keep = longtail_indices(data.train_y, data.num_classes, f)
    return ArrayData(data.train_x[keep], data.train_y[keep], data.test_x, data.test_y, data.num_classes,
                     data.held_out_x)


def setup(cfg: dict):
    check(cfg)
    from hemcli.data import dataset_info

    if cfg["dataset"]["name"] in LISTED:
        return classify.setup(cfg)
    f = factor(cfg, dataset_info(cfg["dataset"]["name"]).num_classes)
    return classify.setup(cfg, reshape=lambda data: subset(data, f))


def run(cfg: dict, checkpoint: Path | None = None, resume: bool = False, quiet: bool = False,
        prepared=None, attack_state=None) -> dict | None:
    prepared = prepared or setup(cfg)
    _, data, loss_fn = prepared
    result = classify.run(cfg, checkpoint, resume, quiet, prepared, attack_state)
    if result is None:
        return None
    counts = data.class_counts()
    margins = getattr(loss_fn, "margins", None)
    listed = cfg["dataset"]["name"] in LISTED
    result["longtail"] = {"factor": None if listed else factor(cfg, data.num_classes), "class_counts": counts,
                          "imbalance": max(counts) / min(counts), "train_size": sum(counts),
                          "margins": margins.tolist() if margins is not None else None}
    empty = result.get("evaluation", {}).get("shots", {}).get("empty_groups", [])
    if empty and not quiet:
        from hemcli.data.longtail import FEW_BELOW, MANY_ABOVE
        from hemcli.progress import note

        bounds = {"many": f"more than {MANY_ABOVE}", "medium": f"{FEW_BELOW} to {MANY_ABOVE}",
                  "few": f"fewer than {FEW_BELOW}"}
        note("no " + " and no ".join(f"{group}-shot class ({bounds[group]} training samples)" for group in empty)
             + " in this subset, so no " + ", ".join(f"{group}_shot_accuracy" for group in empty))
    return result
