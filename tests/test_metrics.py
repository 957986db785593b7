"""Metrics: each function against numbers worked out by hand and against a reference library
(scikit-learn's ROC functions, torchmetrics' calibration error, PyTorch's cross-entropy,
pytorch-ood's detectors), then its input checks.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score, roc_curve

from hemcli.errors import HemError
from hemcli.metrics import (
    SCORES,
    acceptance_threshold,
    auroc,
    brier_score,
    dar,
    energy,
    expected_calibration_error,
    fpr_at_tpr,
    gen,
    max_logit,
    msp,
    negative_log_likelihood,
    score_fn,
)


def sklearn_roc(known, unknown):
    labels = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
    return labels, np.r_[known, unknown]


def sklearn_fpr_at_tpr(known, unknown, tpr):
    fpr, tprs, _ = roc_curve(*sklearn_roc(known, unknown), drop_intermediate=False)
    return fpr[np.argmax(tprs >= tpr)]


def score_sets(seed, n_known, n_unknown, tied):
    rng = np.random.default_rng(seed)
    if tied:  # integers 0..3: most pairs are ties
        return rng.integers(0, 4, n_known).astype(float), rng.integers(0, 4, n_unknown).astype(float)
    return rng.normal(1.0, 1.0, n_known), rng.normal(0.0, 1.0, n_unknown)


SETS = [(seed, nk, nu, tied) for seed, (nk, nu) in enumerate([(1, 1), (7, 3), (50, 200), (1000, 333)])
        for tied in (False, True)]


# ---- ranking -------------------------------------------------------------------------------------

def test_auroc_by_hand():
    # pairs known > unknown: 0.9 beats both, 0.8 beats both, 0.4 beats 0.1 only -> 5 of 6
    assert auroc([0.9, 0.8, 0.4], [0.5, 0.1]) == pytest.approx(5 / 6)
    # (1, 1) twice tied (1/2 each), (1, 0) twice won -> (1 + 2) / 4
    assert auroc([1, 1], [1, 0]) == pytest.approx(3 / 4)
    assert auroc([2.0, 2.0], [2.0]) == 0.5
    assert auroc([1.0], [0.0]) == 1.0 and auroc([0.0], [1.0]) == 0.0


@pytest.mark.parametrize("seed,n_known,n_unknown,tied", SETS)
def test_auroc_matches_sklearn(seed, n_known, n_unknown, tied):
    known, unknown = score_sets(seed, n_known, n_unknown, tied)
    if n_known == n_unknown == 1 and known[0] == unknown[0]:
        pytest.skip("one tied pair")  # never drawn with these seeds; kept for safety
    expected = roc_auc_score(*sklearn_roc(known, unknown))
    assert auroc(known, unknown) == pytest.approx(expected, abs=1e-12)


def test_auroc_takes_tensors_of_any_shape():
    known, unknown = score_sets(3, 60, 40, False)
    expected = roc_auc_score(*sklearn_roc(known, unknown))
    got = auroc(torch.tensor(known).reshape(6, 10), torch.tensor(unknown, dtype=torch.float32))
    assert got == pytest.approx(expected, abs=1e-6)  # float32 rounding may merge nearly equal scores
    assert isinstance(got, float)


def test_fpr_at_tpr_by_hand():
    known, unknown = [0.9, 0.8, 0.4], [0.5, 0.1]
    # 95% of 3 knowns needs all three: threshold 0.4 also accepts the unknown 0.5 -> 1/2
    assert fpr_at_tpr(known, unknown) == 0.5
    # threshold 0.8 accepts 2/3 >= 0.6 of the knowns and no unknown
    assert fpr_at_tpr(known, unknown, tpr=0.6) == 0.0
    # ties: known [1, 1, 0], unknown [1, 0]; threshold 1 gives TPR 2/3 and FPR 1/2
    assert fpr_at_tpr([1, 1, 0], [1, 0], tpr=0.5) == 0.5
    assert fpr_at_tpr([1, 1, 0], [1, 0], tpr=0.95) == 1.0


@pytest.mark.parametrize("seed,n_known,n_unknown,tied", SETS)
@pytest.mark.parametrize("tpr", [0.0, 0.5, 0.8, 0.95, 1.0])
def test_fpr_at_tpr_matches_sklearn_roc_curve(seed, n_known, n_unknown, tied, tpr):
    known, unknown = score_sets(seed, n_known, n_unknown, tied)
    assert fpr_at_tpr(known, unknown, tpr=tpr) == pytest.approx(sklearn_fpr_at_tpr(known, unknown, tpr), abs=1e-12)


def test_fpr_at_tpr_exact_share():
    # 20 knowns: 19/20 == 0.95 must reach the 95% point (not need the 20th known)
    known = np.arange(20, dtype=float) + 10  # 10..29
    unknown = np.array([10.5, 5.0])  # only accepted once the lowest known (10) is
    assert fpr_at_tpr(known, unknown) == 0.0 == sklearn_fpr_at_tpr(known, unknown, 0.95)


@pytest.mark.parametrize("fn", [auroc, fpr_at_tpr])
def test_ranking_rejects_bad_scores(fn):
    for known, unknown, word in [([], [1.0], "known scores is empty"), ([1.0], [], "unknown scores is empty"),
                                 ([1.0, float("nan")], [0.0], "NaN"), ([1.0], [np.inf], "infinite")]:
        with pytest.raises(HemError, match=word) as err:
            fn(known, unknown)
        assert "\n" not in str(err.value)
    with pytest.raises(HemError, match="numbers"):
        fn(["a"], [1.0])


def test_fpr_at_tpr_rejects_bad_tpr():
    with pytest.raises(HemError, match=r"tpr must be a fraction in \[0, 1\]"):
        fpr_at_tpr([1.0], [0.0], tpr=95)


# ---- rejection (DAR) -----------------------------------------------------------------------------

# 20 correctly classified clean samples with confidences 0.05, 0.10, ..., 1.00; two wrong ones that must
# not move the threshold. Descending, index ceil(0.95 * 20) - 1 = 18 holds 0.10, so t = 0.10.
CLEAN_CONF = np.r_[np.arange(1, 21) / 20, 0.99, 0.01]
CLEAN_CORRECT = np.r_[np.ones(20, bool), False, False]
# adversarial samples, one per line:  conf   correct   accepted (conf >= 0.10)   handled correctly
ADV = [(0.50, True),    # accepted, right  -> yes
       (0.90, False),   # accepted, wrong  -> no
       (0.05, False),   # rejected, wrong  -> yes
       (0.02, True),    # rejected, right  -> no
       (0.10, True),    # on the threshold: accepted, right -> yes
       (0.099, False)]  # rejected, wrong  -> yes
ADV_DAR = 4 / 6


def test_acceptance_threshold_by_hand():
    assert acceptance_threshold(CLEAN_CONF, CLEAN_CORRECT) == 0.10
    # accept 1/2: index ceil(10) - 1 = 9 of 1.00, 0.95, ... -> 0.55; accept 1: the lowest, 0.05
    assert acceptance_threshold(CLEAN_CONF, CLEAN_CORRECT, accept=0.5) == pytest.approx(0.55)
    assert acceptance_threshold(CLEAN_CONF, CLEAN_CORRECT, accept=1.0) == 0.05
    # 3 correct: ceil(0.95 * 3) - 1 = 2 -> the lowest of them
    assert acceptance_threshold([0.3, 0.9, 0.6], [1, 1, 1]) == 0.3
    # accept 0.28 of 25 (1..25): index ceil(7) - 1 = 6 -> 19, although 0.28 * 25 is 7.000000000000001
    assert acceptance_threshold(np.arange(1.0, 26.0), np.ones(25), accept=0.28) == 19.0


def test_dar_by_hand():
    adv_conf, adv_correct = zip(*ADV)
    assert dar(CLEAN_CONF, CLEAN_CORRECT, adv_conf, adv_correct) == pytest.approx(ADV_DAR)
    # tensors (bool and 0/1 flags) give the same
    got = dar(torch.tensor(CLEAN_CONF, dtype=torch.float64), torch.tensor(CLEAN_CORRECT),
              torch.tensor(adv_conf, dtype=torch.float64), torch.tensor(adv_correct).long())
    assert got == pytest.approx(ADV_DAR)
    # accept 1 (t = 0.05): 0.05 and 0.099 (both wrong) are now accepted too; 0.50 and 0.10 stay
    # handled, 0.90 and 0.02 stay mishandled -> 2 of 6
    assert dar(CLEAN_CONF, CLEAN_CORRECT, adv_conf, adv_correct, accept=1.0) == pytest.approx(2 / 6)


def test_dar_rejects_bad_input():
    cases = [
        (dict(accept=0.0), "accept must be a fraction in \\(0, 1\\]"),
        (dict(accept=1.5), "accept must be a fraction"),
        (dict(clean_correct=np.zeros(22, bool)), "no clean sample is classified correctly"),
        (dict(clean_correct=np.ones(5, bool)), "clean correctness flags has 5 entries but the confidences have 22"),
        (dict(adv_correct=[True]), "adversarial correctness flags has 1 entries"),
        (dict(adv_correct=[2, 0]), "must hold booleans"),
        (dict(adv_conf=[]), "adversarial confidences is empty"),
        (dict(clean_conf=np.r_[np.nan, CLEAN_CONF[1:]]), "NaN"),
    ]
    for change, message in cases:
        args = dict(clean_conf=CLEAN_CONF, clean_correct=CLEAN_CORRECT, adv_conf=[0.5, 0.2],
                    adv_correct=[True, False], accept=0.95) | change
        with pytest.raises(HemError, match=message) as err:
            dar(**args)
        assert "\n" not in str(err.value)


# ---- calibration ---------------------------------------------------------------------------------

def torchmetrics_ece(probs, labels, bins=15):
    from torchmetrics.functional.classification import multiclass_calibration_error

    probs, labels = torch.as_tensor(probs), torch.as_tensor(labels)
    return float(multiclass_calibration_error(probs, labels, num_classes=probs.shape[1], n_bins=bins, norm="l1"))


def test_ece_by_hand():
    # 10 bins: 0.72 (right) and 0.78 (wrong) share [0.7, 0.8): |0.5 - 0.75| * 2/3; 0.95 (right): 0.05 * 1/3
    probs = [[0.72, 0.28], [0.22, 0.78], [0.95, 0.05]]
    assert expected_calibration_error(probs, [0, 0, 0], bins=10) == pytest.approx((0.5 + 0.05) / 3)
    # a confidence on an edge goes to the bin above: 0.5 (right) and 0.45 (wrong) are apart -> (0.5 + 0.45) / 2
    # (merged they would give |0.5 - 0.475| = 0.025)
    probs = [[0.5, 0.25, 0.25], [0.45, 0.3, 0.25]]
    assert expected_calibration_error(probs, [0, 1], bins=10) == pytest.approx(0.475)
    # a confidence of exactly 1 is a bin of its own: 1.0 (wrong) and 0.92 (right) -> (1 + 0.08) / 2
    # (merged into [0.9, 1] they would give |0.5 - 0.96| = 0.46)
    assert expected_calibration_error([[1.0, 0.0], [0.92, 0.08]], [1, 0], bins=10) == pytest.approx(0.54)


@pytest.mark.parametrize("seed,n,c,bins", [(0, 500, 10, 15), (1, 37, 3, 15), (2, 1000, 100, 10), (3, 200, 2, 7)])
def test_ece_matches_torchmetrics(seed, n, c, bins):
    gen_ = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(n, c, generator=gen_), dim=1)
    labels = torch.randint(0, c, (n,), generator=gen_)
    expected = torchmetrics_ece(probs, labels, bins)
    assert expected_calibration_error(probs, labels, bins=bins) == pytest.approx(expected, abs=1e-6)
    assert expected_calibration_error(probs.numpy(), labels.numpy(), bins=bins) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("bins", [15, 10, 7])
@pytest.mark.parametrize("edges_from", ["torch", "float64"])
def test_ece_matches_torchmetrics_on_bin_edges(bins, edges_from):
    # top confidences exactly k/B (as torch's float32 linspace or as float64 k/B, which torchmetrics rounds
    # to float32), k = 1..B; the other 19 classes share the rest. Each confidence appears with a right
    # and a wrong label, plus an off-edge sample per bin, so moving an edge sample to the neighbouring
    # bin changes the result.
    k = torch.arange(1, bins + 1)
    edge = torch.linspace(0, 1, bins + 1)[1:].double() if edges_from == "torch" else k.double() / bins
    conf = torch.cat([edge, edge, edge - 0.3 / bins])
    c = 20
    probs = torch.cat([conf[:, None], ((1 - conf) / (c - 1))[:, None].expand(-1, c - 1)], dim=1)
    labels = torch.cat([torch.zeros(bins), torch.ones(bins), torch.arange(bins) % 2]).long()
    for dtype in (torch.float32, torch.float64):
        if dtype == torch.float32:  # keep the float32 top confidence exactly the edge value
            p = probs.float()
            p[:, 0] = conf.float()
        else:
            p = probs
        expected = torchmetrics_ece(p, labels, bins)
        assert expected_calibration_error(p, labels, bins=bins) == pytest.approx(expected, abs=1e-6)


def test_nll_matches_cross_entropy():
    gen_ = torch.Generator().manual_seed(0)
    logits, labels = 4 * torch.randn(64, 7, generator=gen_), torch.randint(0, 7, (64,), generator=gen_)
    assert negative_log_likelihood(logits, labels) == pytest.approx(float(F.cross_entropy(logits.double(), labels)))
    # softmax of [0, ln 3] is [1/4, 3/4]: -log(1/4) = ln 4
    assert negative_log_likelihood([[0.0, math.log(3)]], [0]) == pytest.approx(math.log(4))
    # logits are handled stably: a confident wrong prediction costs its logit gap, not inf
    assert negative_log_likelihood(torch.tensor([[1000.0, 0.0]]), torch.tensor([1])) == pytest.approx(1000.0)


def test_brier_by_hand():
    # (0.7 - 1)^2 + 0.2^2 + 0.1^2 = 0.09 + 0.04 + 0.01
    assert brier_score([[0.7, 0.2, 0.1]], [0]) == pytest.approx(0.14)
    # mean of 0.14 and (0.5^2 + 0.5^2) = 0.5; certain and wrong gives the maximum 2
    assert brier_score(torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]]), torch.tensor([0, 1])) == pytest.approx(0.32)
    assert brier_score([[1.0, 0.0]], [1]) == 2.0


@pytest.mark.parametrize("fn", [expected_calibration_error, brier_score, negative_log_likelihood])
def test_calibration_rejects_bad_input(fn):
    good = [[0.7, 0.3], [0.4, 0.6]]
    cases = [([0.7, 0.3], [0], "shape \\(N, C\\)"), (good, [0], "labels must have shape \\(2,\\)"),
             (good, [0, 2], "labels must lie in \\[0, 1\\]"), (good, [0.0, 1.0], "integer class indices"),
             ([[float("nan"), 1.0], [0.5, 0.5]], [0, 1], "finite")]
    for values, labels, message in cases:
        with pytest.raises(HemError, match=message) as err:
            fn(values, labels)
        assert "\n" not in str(err.value)


def test_probability_metrics_reject_logits():
    for fn in (expected_calibration_error, brier_score):
        with pytest.raises(HemError, match="apply softmax to logits first"):
            fn([[2.0, -1.0], [0.3, 0.1]], [0, 1])
    with pytest.raises(HemError, match="bins must be a positive integer"):
        expected_calibration_error([[0.7, 0.3]], [0], bins=0)


# ---- scores --------------------------------------------------------------------------------------

# softmax of [0, ln 2, ln 5] is [1, 2, 5] / 8
HAND_LOGITS = torch.tensor([[0.0, math.log(2), math.log(5)]], dtype=torch.float64)
HAND_P = [1 / 8, 2 / 8, 5 / 8]


def test_scores_by_hand():
    assert float(msp(HAND_LOGITS)) == pytest.approx(5 / 8)
    assert float(max_logit(HAND_LOGITS)) == pytest.approx(math.log(5))
    assert float(energy(HAND_LOGITS)) == pytest.approx(math.log(8))  # log(1 + 2 + 5)
    # gamma 1: sum p (1 - p) = (1*7 + 2*6 + 5*3) / 64; top 2 keeps 5/8 and 2/8: (15 + 12) / 64
    assert float(gen(HAND_LOGITS, gamma=1.0)) == pytest.approx(-34 / 64)
    assert float(gen(HAND_LOGITS, gamma=1.0, top=2)) == pytest.approx(-27 / 64)
    expected = -sum(p ** 0.1 * (1 - p) ** 0.1 for p in HAND_P)
    assert float(gen(HAND_LOGITS)) == pytest.approx(expected)


def test_scores_rank_a_confident_sample_as_known():
    logits = torch.tensor([[8.0, 0.0, 0.0], [0.1, 0.0, 0.0]])  # sharp (known-like), flat (unknown-like)
    for name, fn in SCORES.items():
        known, unknown = fn(logits).tolist()
        assert known > unknown, name


def test_scores_keep_shape_dtype_and_work_per_pixel():
    logits = torch.randn(2, 5, 3, 4)
    for name, fn in SCORES.items():
        out = fn(logits)
        assert out.shape == (2, 3, 4) and out.dtype == torch.float32, name
        flat = fn(logits.permute(0, 2, 3, 1).reshape(-1, 5)).reshape(2, 3, 4)
        assert torch.allclose(out, flat, atol=1e-6), name


def test_scores_are_pytorch_ood_negated():
    detector = pytest.importorskip("pytorch_ood.detector")
    gen_ = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(40, 150, generator=gen_)
    # pytorch-ood returns outlier scores (higher = more unknown): check its orientation first
    assert detector.MaxSoftmax.score(torch.tensor([[9.0, 0.0], [0.0, 0.0]])).argmax() == 1
    assert torch.allclose(msp(logits), -detector.MaxSoftmax.score(logits))
    assert torch.allclose(max_logit(logits), -detector.MaxLogit.score(logits))
    assert torch.allclose(energy(logits), -detector.EnergyBased.score(logits))
    # its GEN averages over the top M (score G / M); ours sums (the paper's G); default M = min(C, 100)
    assert torch.allclose(gen(logits), -100 * detector.GEN.score(logits, gamma=0.1, M=100), atol=1e-5)
    # pytorch-ood clamps probabilities to >= 1e-7 (the paper's code does not): keep them well above that
    small = logits[:, :10] / 3
    assert torch.softmax(small, dim=1).min() > 1e-4
    assert torch.allclose(gen(small, gamma=0.5), -10 * detector.GEN.score(small, gamma=0.5, M=None), atol=1e-5)
    assert torch.allclose(gen(small, top=3), -3 * detector.GEN.score(small, gamma=0.1, M=3), atol=1e-5)


def test_score_registry():
    assert SCORES == {"msp": msp, "mls": max_logit, "energy": energy, "gen": gen}
    assert score_fn("mls") is max_logit
    with pytest.raises(HemError, match=r"^unknown score 'maxlogit'; valid choices: energy, gen, mls, msp$"):
        score_fn("maxlogit")


def test_scores_reject_bad_input():
    with pytest.raises(HemError, match="shape \\(N, C, ...\\)"):
        msp(torch.zeros(5))
    with pytest.raises(HemError, match="floating-point"):
        energy(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(HemError, match="top must be an integer in \\[1, 3\\]"):
        gen(HAND_LOGITS, top=4)
    with pytest.raises(HemError, match="gamma must be > 0"):
        gen(HAND_LOGITS, gamma=0)
