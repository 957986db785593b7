"""The loss registry: name -> LossInfo, and ``build_loss`` which checks user input before building.

A builder is called as ``builder(num_classes=..., class_counts=..., ignore_index=..., **params)``
with every parameter of ``defaults`` filled in (user value or default); ``class_counts`` is a
checked tuple of floats or None. A parameter's type is its default's type (an int is accepted for a
float); a default of None means an optional number.

Besides the built-in losses registered below, a name ``package.module:NAME`` or an entry point of
group ``hemcli.losses`` is a plug-in loss (``hemcli.losses.plugins``), registered on its first lookup.
"""
from __future__ import annotations

from typing import Mapping

from torch import nn

from hemcli.errors import HemError, unknown_name
from hemcli.losses import modules as loss_modules
from hemcli.losses.info import BUILT_IN, LossInfo, require_counts as _require_counts
from hemcli.losses.margins import DEFAULT_M, checked_class_counts, hem_margins, is_finite_number

class LossRegistry(dict):
    """name -> LossInfo, where looking up a plug-in's name registers it first.

    So every place that looks a loss up (the recipe's check of ``loss.name``, planning, building the
    loss in a sweep worker) finds a plug-in the recipe names, in whichever process it runs, without
    a registration step of its own. Iterating lists only what is registered so far. A lookup of a bad
    plug-in (``in`` included) is the HemError that says what is wrong with it.
    """

    def find(self, name) -> LossInfo | None:
        """The loss ``name``, registering a plug-in on its first lookup; None if there is no such loss."""
        info = dict.get(self, name)
        if info is not None or not isinstance(name, str):
            return info
        from hemcli.losses.plugins import find_plugin

        info = find_plugin(name)
        return None if info is None else self.register(info)

    def register(self, info: LossInfo) -> LossInfo:
        if dict.__contains__(self, info.name):
            raise ValueError(f"loss {info.name!r} is already registered")
        self[info.name] = info
        return info

    def __contains__(self, name) -> bool:
        return self.find(name) is not None

    def __missing__(self, name) -> LossInfo:
        info = self.find(name)
        if info is None:
            raise unknown_name("loss", name, self)
        return info

    def get(self, name, default=None):
        info = self.find(name)
        return default if info is None else info


LOSSES = LossRegistry()


def register_loss(info: LossInfo) -> LossInfo:
    """Add ``info`` to LOSSES; a name can be registered once (ValueError otherwise)."""
    return LOSSES.register(info)


def build_loss(name: str, *, num_classes: int, class_counts=None, ignore_index: int = -100, **params) -> nn.Module:
    """The loss module ``name`` with ``params`` over its defaults; HemError (one line) on bad input."""
    info = LOSSES[name]
    for key, value in params.items():
        _check_param(info, key, value)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise HemError(f"loss {name!r}: num_classes must be an integer >= 2, got {num_classes!r}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise HemError(f"loss {name!r}: ignore_index must be an integer, got {ignore_index!r}")
    if class_counts is not None and info.needs_class_counts:
        class_counts = checked_class_counts(class_counts, num_classes, owner=f"loss {name!r}")
    return info.builder(num_classes=num_classes, class_counts=class_counts, ignore_index=ignore_index,
                        **{**info.defaults, **params})


def loss_params(name: str, params: Mapping[str, object], drop_unknown: bool = False) -> dict:
    """``params`` over the loss's defaults: what a run of ``name`` really uses, as its recipe records.

    A parameter ``name`` does not take is an error, or left out with ``drop_unknown`` (a sweep over
    several losses gives each only the parameters it has).
    """
    info = LOSSES[name]
    given = {key: value for key, value in params.items() if key in info.defaults or not drop_unknown}
    for key, value in given.items():
        _check_param(info, key, value)
    return {**info.defaults, **given}


def check_loss(name: str, *, num_classes: int, **params) -> None:
    """Every check ``build_loss`` makes on ``name`` and ``params``, before the class counts are known.

    Builds the loss once with equal class counts and drops it: a task calls this before it loads
    (and perhaps downloads) its data, so that a bad parameter is refused before anything is written.
    A plug-in loss is also called once on a small batch (``plugins.probe``), so that one that cannot
    train is refused then too.
    """
    loss = build_loss(name, num_classes=num_classes, class_counts=[1.0] * num_classes, **params)
    if LOSSES[name].source != BUILT_IN:
        from hemcli.losses.plugins import probe

        probe(loss, num_classes)


def _check_param(info: LossInfo, key: str, value) -> None:
    if key not in info.defaults:
        valid = ", ".join(info.defaults) or "none"
        raise HemError(f"loss {info.name!r} has no parameter {key!r}; valid parameters: {valid}")
    default = info.defaults[key]
    if default is None or isinstance(default, float):
        ok = (value is None and default is None) or is_finite_number(value)
        expected = "a number" if default is not None else "a number or null"
    elif isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    else:
        ok, expected = isinstance(value, type(default)), f"a {type(default).__name__}"
    if not ok:
        raise HemError(f"loss {info.name!r}: parameter {key!r} must be {expected}, "
                       f"got {type(value).__name__} {value!r}")


def _simple(module_cls):
    """Builder for a loss whose module takes just its hyper-parameters and ignore_index."""
    def build(*, num_classes, class_counts, ignore_index, **params):
        return module_cls(**params, ignore_index=ignore_index)
    return build


def _build_la(*, num_classes, class_counts, ignore_index, tau):
    counts = _require_counts("la", class_counts)
    return loss_modules.LogitAdjustedLoss(counts, tau=tau, ignore_index=ignore_index)


def _hem_builder(name: str, per_class: bool):
    """HEM (per_class) or HEM- (shared): margins from the class counts, unless ``margin`` overrides them."""
    def build(*, num_classes, class_counts, ignore_index, M, margin, margin_index="logit"):
        if margin is not None:
            if margin < 0:
                raise HemError(f"loss {name!r}: margin must be >= 0, got {margin!r}")
            margins = float(margin)
        else:
            margins = hem_margins(_require_counts(name, class_counts, " or an explicit margin"), M, per_class)
        module = loss_modules.HighErrorMarginLoss(margins, margin_index=margin_index, ignore_index=ignore_index)
        module.loss_name = name
        return module
    return build


for _info in (
    LossInfo("ce", _simple(loss_modules.CrossEntropyLoss), "cross-entropy, -log softmax(y / tau)_l",
             {"tau": 1.0}),
    LossInfo("ln", _simple(loss_modules.LogitNormLoss), "LogitNorm: cross-entropy of y / (tau ||y||)",
             {"tau": 0.04, "eps": 1e-7}),
    LossInfo("la", _build_la, "logit-adjusted cross-entropy of y + tau log(class prior)",
             {"tau": 1.0}, needs_class_counts=True),
    LossInfo("dice", _simple(loss_modules.DiceLoss),
             "1 - Dice overlap of softmax and one-hot targets, per class over the batch", {}),
    LossInfo("mm", _simple(loss_modules.MultiMarginLoss),
             "multi-class margin (hinge) loss, mean over logits, as F.multi_margin_loss", {"margin": 1.0},
             zero_loss="valid"),
    LossInfo("hem-", _hem_builder("hem-", per_class=False),
             "high error margin loss, one shared margin sqrt(M / sum(counts))",
             {"M": DEFAULT_M, "margin": None}, needs_class_counts=True, zero_loss="positive"),
    LossInfo("hem", _hem_builder("hem", per_class=True),
             "high error margin loss, per-class margins sqrt(M / (C count_i)) (paper Eq. 1-2)",
             {"M": DEFAULT_M, "margin": None, "margin_index": "logit"}, needs_class_counts=True,
             zero_loss="positive"),
    LossInfo("focal", _simple(loss_modules.FocalLoss), "focal loss, -(1 - p_l)^gamma log p_l", {"gamma": 2.0}),
    LossInfo("ls", _simple(loss_modules.LabelSmoothingLoss), "cross-entropy with label smoothing alpha",
             {"alpha": 0.1}),
    LossInfo("logit-penalty", _simple(loss_modules.LogitPenaltyLoss), "cross-entropy + beta ||y||^2",
             {"beta": 10 ** -2.83}),
    LossInfo("sigmoid", _simple(loss_modules.SigmoidLoss), "one-vs-rest sigmoid cross-entropy, summed over classes",
             {}),
    LossInfo("squared", _simple(loss_modules.SquaredErrorLoss),
             "squared error, target class weighted kappa and pulled to M", {"kappa": 8.0, "M": 0.83}),
    LossInfo("encouraging", _simple(loss_modules.EncouragingLoss),
             "cross-entropy + log(1 - p_l) bonus; conservative bonus when LE < 1", {"LE": 1.0}),
):
    register_loss(_info)


def available() -> list[str]:
    """The names of the registered losses, sorted: the built-in ones and every plug-in registered so far."""
    return sorted(LOSSES)


def loss_names() -> list[str]:
    """Every name a loss has here: the registered ones, then the entry points not loaded yet."""
    from hemcli.losses import plugins

    names = list(LOSSES)
    return names + [point.name for point in plugins.loss_entry_points() if point.name not in names]


def load_entry_points() -> list[tuple[str, str, str]]:
    """Register every entry-point loss (``hem losses`` lists them); (name, source, problem) for each
    that cannot be used: one that fails to load, or one named as a built-in loss (refused)."""
    from hemcli.losses import plugins

    problems = []
    for point in plugins.loss_entry_points():
        source = f"entry point {plugins.dist_name(point)}"
        try:
            info = LOSSES.find(point.name)
        except HemError as err:
            problems.append((point.name, source, str(err)))
            continue
        if info is not None and info.source == BUILT_IN:
            problems.append((point.name, source, f"refused: {point.name!r} is the name of a built-in loss"))
    return problems
