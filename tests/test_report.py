"""`hem report`: finding and loading result files, grouping by condition, statistics, CE matching,
marks, formats and the plot."""

import csv
import io
import json
import math
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hemcli.errors import HemError
from hemcli.report import build_rows, find_results, load_results, lower_is_better, render, report
from hemcli.runs.condition import condition_of

CE_ACCURACY = [90.0, 91.0, 92.5]
HEM_ACCURACY = [93.0, 94.5, 95.0]
CE_AUROC = [80.0, 82.0, 81.0]
HEM_AUROC = [85.0, 84.0, 88.0]
# What a new result records as loss.params: every default filled in.
LOSS_DEFAULTS = {"ce": {"tau": 1.0}, "hem": {"M": 2000, "margin": None, "margin_index": "logit"},
                 "focal": {"gamma": 2.0}}
QUIET = {"warn": lambda message: None}


def make_result(loss="hem", seed=0, metrics=None, task="classify", dataset="digits", arch="lenet",
                status="complete", params=None, layout="new", **recipe_extra):
    """A result dict shaped like the ones `hem <task>` writes.

    ``layout="new"``: the loss's parameters with their defaults filled in (``params`` overrides some),
    and a ``condition`` field. ``layout="old"``: ``params`` as given (``{}`` by default), no condition.
    """
    if layout == "new":
        params = {**LOSS_DEFAULTS.get(loss, {}), **(params or {})}
    recipe = {
        "task": task, "dataset": {"name": dataset, "root": f"/data/{seed}"}, "model": {"arch": arch},
        "loss": {"name": loss, "params": params or {}}, "optim": {"name": "sgd", "lr": 0.1},
        "epochs": 30, "batch_size": 128, "seed": seed, "device": "cpu" if seed % 2 else "cuda", **recipe_extra,
    }
    result = {
        "schema_version": 1, "task": task, "status": status, "recipe": recipe,
        "metrics": {"clean_accuracy": 97.5} if metrics is None else metrics,
        "history": [{"epoch": 1, "train_loss": 0.5, "train_accuracy": 80.0, "test_accuracy": 85.0, "seconds": 0.3}],
        "environment": {"python": "3.11"}, "timings": {"total_seconds": 12.0},
    }
    if layout == "new":
        result["condition"] = condition_of(recipe)
    return result


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def write_runs(root: Path, loss: str, accuracies, aurocs=None, name=None, **kwargs) -> None:
    """One result per seed under root/<name or loss>/seed<k>/result.json (nested directories)."""
    for seed, accuracy in enumerate(accuracies):
        metrics = {"clean_accuracy": accuracy}
        if aurocs is not None and seed < len(aurocs):
            metrics["unknown_class_auroc"] = aurocs[seed]
        write(root / (name or loss) / f"seed{seed}" / "result.json", make_result(loss, seed, metrics, **kwargs))


@pytest.fixture
def runs(tmp_path):
    """Three CE and three HEM runs on digits/lenet, with two metrics each."""
    write_runs(tmp_path, "ce", CE_ACCURACY, CE_AUROC)
    write_runs(tmp_path, "hem", HEM_ACCURACY, HEM_AUROC)
    return tmp_path


def table_lines(text):
    """The lines of a github table, each a list of stripped cell texts (line 1 is the rule)."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]


def github_cells(paths, **kwargs):
    return table_lines(report(paths, **QUIET, **kwargs))


def raw_headers(header):
    """A github header with each metric column named by its key and its Δ and p columns
    ``<key> vs ce`` and ``<key> p``, so that a test reads cells by the metric's key."""
    named, metric = [], None
    for text in header:
        if text == "Δ vs CE [95% CI]":
            named.append(f"{metric} vs ce")
        elif text == "p":
            named.append(f"{metric} p")
        elif text.endswith((" ↑", " ↓")):
            metric = RAW.get(text, text[:-2])
            named.append(metric)
        else:
            named.append(text)
    return named


RAW = {"clean accuracy (%) ↑": "clean_accuracy"}  # display name -> key, for the metrics these tests use


def github_rows(paths, **kwargs):
    """The github table as one {header: cell} dict per row, metric columns by key (``raw_headers``)."""
    header, _, *lines = github_cells(paths, **kwargs)
    return [dict(zip(raw_headers(header), line)) for line in lines]


def as_json(paths, **kwargs):
    return json.loads(report(paths, fmt="json", **QUIET, **kwargs))


def pooled_interval(values, baseline):
    """The 95% interval of mean(values) - mean(baseline) from the pooled-variance t formula."""
    n1, n2 = len(values), len(baseline)
    pooled_sd = math.sqrt(((n1 - 1) * np.var(values, ddof=1) + (n2 - 1) * np.var(baseline, ddof=1)) / (n1 + n2 - 2))
    half = stats.t.ppf(0.975, n1 + n2 - 2) * pooled_sd * math.sqrt(1 / n1 + 1 / n2)
    delta = np.mean(values) - np.mean(baseline)
    return delta - half, delta + half


# ---------------------------------------------------------------- grouping and statistics


def test_two_losses_give_two_rows_with_mean_std_and_n(runs):
    rows = as_json(runs)
    assert [(row["task"], row["dataset"], row["arch"], row["loss"]) for row in rows] == [
        ("classify", "digits", "lenet", "ce"),
        ("classify", "digits", "lenet", "hem"),
    ]
    for row, accuracy, auroc in zip(rows, [CE_ACCURACY, HEM_ACCURACY], [CE_AUROC, HEM_AUROC]):
        assert row["n"] == 3
        for name, values in [("clean_accuracy", accuracy), ("unknown_class_auroc", auroc)]:
            summary = row["metrics"][name]
            assert summary["mean"] == pytest.approx(np.mean(values))
            assert summary["std"] == pytest.approx(np.std(values, ddof=1))
            assert summary["n"] == 3


def test_std_by_hand():
    (row,) = build_rows([make_result("ce", seed, {"m": value}) for seed, value in enumerate([1.0, 2.0, 3.0])])
    assert (row.metrics["m"].mean, row.metrics["m"].std, row.metrics["m"].n) == (2.0, 1.0, 3)


def test_single_run_has_no_std(tmp_path):
    write(tmp_path / "r.json", make_result("hem", 0, {"clean_accuracy": 97.5}))
    (row,) = as_json(tmp_path)
    assert row["metrics"]["clean_accuracy"] == {"mean": 97.5, "std": None, "n": 1, "delta": None, "p": None,
                                                "ci_low": None, "ci_high": None, "few_runs": None, "best": False}
    assert "97.50 ± —" in report(tmp_path, **QUIET)


def test_metric_missing_from_some_runs_counts_per_metric(tmp_path):
    write_runs(tmp_path, "hem", HEM_ACCURACY, aurocs=HEM_AUROC[:2])
    (row,) = as_json(tmp_path)
    assert row["n"] == 3
    assert row["metrics"]["clean_accuracy"]["n"] == 3
    auroc = row["metrics"]["unknown_class_auroc"]
    assert auroc["n"] == 2
    assert auroc["mean"] == pytest.approx(np.mean(HEM_AUROC[:2]))
    assert auroc["std"] == pytest.approx(np.std(HEM_AUROC[:2], ddof=1))
    assert "(n=2)" in report(tmp_path, **QUIET)


def test_metric_absent_from_a_whole_group_is_empty(tmp_path):
    write_runs(tmp_path, "ce", CE_ACCURACY)
    write_runs(tmp_path, "hem", HEM_ACCURACY, HEM_AUROC)
    ce, hem = as_json(tmp_path)
    assert ce["metrics"]["unknown_class_auroc"] is None
    assert hem["metrics"]["unknown_class_auroc"]["n"] == 3


def test_non_numeric_metrics_are_left_out_and_scalars_warned(tmp_path):
    path = write(tmp_path / "r.json", make_result("ce", 0, {"acc": 1.0, "flag": True, "note": "x",
                                                             "per_class": [1, 2], "per_corruption": {"fog": 1}}))
    warnings = []
    (row,) = json.loads(report(tmp_path, fmt="json", warn=warnings.append))
    assert list(row["metrics"]) == ["acc"]
    assert warnings == [f"{path}: metric 'flag' is not a number (true); left out of the table",
                        f"{path}: metric 'note' is not a number (\"x\"); left out of the table"]


def test_rows_sorted_by_task_dataset_arch_then_ce_first(tmp_path):
    for loss in ["hem", "focal", "ce"]:
        for dataset in ["mnist", "digits"]:
            write(tmp_path / f"{loss}-{dataset}.json", make_result(loss, 0, dataset=dataset))
    write(tmp_path / "seg.json", make_result("ce", 0, task="segment", dataset="cityscapes"))
    keys = [(row["task"], row["dataset"], row["loss"]) for row in as_json(tmp_path)]
    assert keys == [
        ("classify", "digits", "ce"), ("classify", "digits", "focal"), ("classify", "digits", "hem"),
        ("classify", "mnist", "ce"), ("classify", "mnist", "focal"), ("classify", "mnist", "hem"),
        ("segment", "cityscapes", "ce"),
    ]


def test_a_strategy_is_a_fixed_column_and_splits_the_comparison(tmp_path):
    for strategy, offset in [("naive", 0.0), ("ewc", 10.0)]:
        for loss, values in [("ce", CE_ACCURACY), ("hem", HEM_ACCURACY)]:
            shifted = [value - offset for value in values]
            write_runs(tmp_path / strategy, loss, shifted, task="continual", strategy={"name": strategy})
    rows = as_json(tmp_path)
    assert list(rows[0])[:5] == ["task", "dataset", "strategy", "arch", "loss"]
    assert [(row["strategy"], row["loss"]) for row in rows] == [
        ("ewc", "ce"), ("ewc", "hem"), ("naive", "ce"), ("naive", "hem")]
    expected = np.mean(HEM_ACCURACY) - np.mean(CE_ACCURACY)
    for row in rows[1::2]:
        assert row["baseline"] == "matched"
        assert row["metrics"]["clean_accuracy"]["delta"] == pytest.approx(expected)


def test_no_extra_column_when_no_result_has_it(runs):
    assert "strategy" not in as_json(runs)[0]
    assert "strategy" not in report(runs, **QUIET).splitlines()[0]


def test_seed_device_and_data_root_do_not_split_a_condition(runs):
    # make_result gives each seed its own device and dataset.root: all of them are run keys
    rows = as_json(runs)
    assert [row["n"] for row in rows] == [3, 3]
    assert set(rows[1]["condition"]) == {"task", "dataset.name", "model.arch", "loss.name", "loss.params.M",
                                         "loss.params.margin", "loss.params.margin_index", "optim.name",
                                         "optim.lr", "epochs", "batch_size"}


def test_m_sweep_gives_an_m_column_and_compares_each_m_with_the_one_ce(tmp_path):
    sweep = {500: [93.0, 94.0, 94.5], 2000: [95.0, 95.5, 97.0]}
    write_runs(tmp_path, "ce", CE_ACCURACY)
    for M, values in sweep.items():
        write_runs(tmp_path, "hem", values, name=f"hem-{M}", params={"M": M})
    rows = as_json(tmp_path)
    assert [(row["loss"], row["M"]) for row in rows] == [("ce", None), ("hem", 500), ("hem", 2000)]
    assert "M" not in rows[0]["condition"] and "loss.params.M" not in rows[0]["condition"]
    assert [row["baseline"] for row in rows] == [None, "matched", "matched"]
    for row in rows[1:]:
        values = sweep[row["M"]]
        summary = row["metrics"]["clean_accuracy"]
        assert summary["delta"] == pytest.approx(np.mean(values) - np.mean(CE_ACCURACY))
        assert summary["p"] == pytest.approx(stats.ttest_ind(values, CE_ACCURACY, equal_var=True).pvalue)
        assert (summary["ci_low"], summary["ci_high"]) == pytest.approx(pooled_interval(values, CE_ACCURACY))
        assert summary["few_runs"] is False
    table = github_rows(tmp_path)
    assert [(row["loss"], row["M"]) for row in table] == [("ce", ""), ("hem", "500"), ("hem", "2000")]
    low, high = pooled_interval(sweep[500], CE_ACCURACY)
    delta = np.mean(sweep[500]) - np.mean(CE_ACCURACY)
    assert table[1]["clean_accuracy vs ce"] == f"{delta:+.2f} [{low:+.2f}, {high:+.2f}]"


def test_one_m_typed_as_float_or_integer_is_one_condition(tmp_path):
    write(tmp_path / "a.json", make_result("hem", 0, params={"M": 1000}))
    write(tmp_path / "b.json", make_result("hem", 1, params={"M": 1000.0}))
    assert [row["n"] for row in as_json(tmp_path)] == [2]


@pytest.mark.parametrize("key, column, values", [
    ("optim", "lr", [{"name": "sgd", "lr": 0.1}, {"name": "sgd", "lr": 0.01}]),
    ("epochs", "epochs", [20, 3]),
])
def test_runs_differing_in_one_key_are_separate_rows_with_that_column(tmp_path, key, column, values):
    for index, value in enumerate(values):
        write_runs(tmp_path, "hem", [90.0 + index], name=f"hem-{index}", **{key: value})
    rows = as_json(tmp_path)
    assert [row["n"] for row in rows] == [1, 1]  # never merged
    shown = sorted(value["lr"] if key == "optim" else value for value in values)
    assert [row[column] for row in rows] == shown  # sorted numerically
    assert [row[column] for row in github_rows(tmp_path)] == [str(value) for value in shown]


# ---------------------------------------------------------------- difference to CE


def test_difference_p_value_and_interval_match_scipy(runs):
    ce, hem = as_json(runs)
    assert ce["metrics"]["clean_accuracy"]["delta"] is None and ce["metrics"]["clean_accuracy"]["p"] is None
    assert ce["baseline"] is None and hem["baseline"] == "matched" and hem["ce_matches"] == 1
    for name, hem_values, ce_values in [("clean_accuracy", HEM_ACCURACY, CE_ACCURACY),
                                        ("unknown_class_auroc", HEM_AUROC, CE_AUROC)]:
        summary = hem["metrics"][name]
        assert summary["delta"] == pytest.approx(np.mean(hem_values) - np.mean(ce_values))
        assert summary["p"] == pytest.approx(stats.ttest_ind(hem_values, ce_values, equal_var=True).pvalue)
        assert (summary["ci_low"], summary["ci_high"]) == pytest.approx(pooled_interval(hem_values, ce_values))


def test_hand_computed_t_test_and_interval(tmp_path):
    # [4, 5, 6] vs [1, 2, 3]: pooled sd 1, t = 3 / sqrt(2/3) = 3.674 with 4 degrees of freedom, p = 0.0213;
    # interval 3 ± t(0.975, 4) sqrt(2/3) = 3 ± 2.7764 * 0.8165 = 3 ± 2.2670.
    write_runs(tmp_path, "ce", [1.0, 2.0, 3.0])
    write_runs(tmp_path, "hem", [4.0, 5.0, 6.0])
    hem = as_json(tmp_path)[1]["metrics"]["clean_accuracy"]
    assert hem["delta"] == pytest.approx(3.0)
    assert hem["p"] == pytest.approx(0.0213, abs=5e-5)
    assert (hem["ci_low"], hem["ci_high"]) == pytest.approx((0.7330, 5.2670), abs=5e-5)
    hem_row = github_rows(tmp_path)[1]
    assert hem_row["clean_accuracy vs ce"] == "+3.00 [+0.73, +5.27]" and hem_row["clean_accuracy p"] == "0.021*"


def test_not_significant_has_no_star(tmp_path):
    write_runs(tmp_path, "ce", [1.0, 2.0, 3.0])
    write_runs(tmp_path, "hem", [1.5, 2.5, 3.5])
    hem = as_json(tmp_path)[1]["metrics"]["clean_accuracy"]
    assert hem["p"] > 0.05
    assert github_rows(tmp_path)[1]["clean_accuracy p"] == f"{hem['p']:.3f}"
    assert "p < 0.05" not in report(tmp_path, **QUIET)  # no note for a mark that is not used


@pytest.mark.parametrize("ce_runs, hem_runs", [(1, 3), (3, 1), (1, 1)])
def test_one_run_on_a_side_gives_a_flagged_difference_without_p_or_interval(tmp_path, ce_runs, hem_runs):
    write_runs(tmp_path, "ce", CE_ACCURACY[:ce_runs])
    write_runs(tmp_path, "hem", HEM_ACCURACY[:hem_runs])
    hem = as_json(tmp_path)[1]["metrics"]["clean_accuracy"]
    assert hem["delta"] == pytest.approx(np.mean(HEM_ACCURACY[:hem_runs]) - np.mean(CE_ACCURACY[:ce_runs]))
    assert hem["p"] is None and hem["ci_low"] is None and hem["ci_high"] is None
    assert hem["few_runs"] is True
    assert github_rows(tmp_path)[1]["clean_accuracy vs ce"] == f"{hem['delta']:+.2f}†"


def test_no_comparison_without_a_ce_row(tmp_path):
    write_runs(tmp_path, "hem", HEM_ACCURACY)
    write_runs(tmp_path, "focal", CE_ACCURACY)
    rows = as_json(tmp_path)
    assert all(row["metrics"]["clean_accuracy"]["delta"] is None for row in rows)
    assert [row["baseline"] for row in rows] == ["none", "none"]
    assert "vs ce" not in report(tmp_path, **QUIET)


def test_identical_constant_samples_have_delta_and_a_zero_width_interval_but_no_p(tmp_path):
    write_runs(tmp_path, "ce", [100.0, 100.0])
    write_runs(tmp_path, "hem", [100.0, 100.0])
    hem = as_json(tmp_path)[1]["metrics"]["clean_accuracy"]
    assert hem["delta"] == 0.0 and hem["p"] is None
    assert (hem["ci_low"], hem["ci_high"]) == (0.0, 0.0)


def test_p_and_interval_left_empty_without_scipy(runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)  # makes `from scipy import stats` raise ImportError
    hem = as_json(runs)[1]["metrics"]["clean_accuracy"]
    assert hem["delta"] == pytest.approx(np.mean(HEM_ACCURACY) - np.mean(CE_ACCURACY))
    assert hem["p"] is None and hem["ci_low"] is None and hem["ci_high"] is None


def test_no_ce_at_the_same_lr_is_said_not_guessed(tmp_path):
    write_runs(tmp_path, "ce", CE_ACCURACY, optim={"name": "sgd", "lr": 0.01})
    write_runs(tmp_path, "hem", HEM_ACCURACY)
    ce, hem = as_json(tmp_path)
    assert (hem["baseline"], hem["ce_matches"]) == ("none", 0)
    assert hem["metrics"]["clean_accuracy"]["delta"] is None and hem["metrics"]["clean_accuracy"]["p"] is None
    table = github_rows(tmp_path)
    assert [(row["lr"], row["loss"], row["clean_accuracy vs ce"]) for row in table] == [
        ("0.01", "ce", ""), ("0.1", "hem", "no CE match")]
    assert table[1]["clean_accuracy p"] == ""
    assert "no CE match / N CE match:" in report(tmp_path, **QUIET)
    records = csv.DictReader(io.StringIO(report(tmp_path, fmt="csv", **QUIET)))
    assert [(record["baseline"], record["clean_accuracy_delta"]) for record in records] == [("", ""), ("none", "")]


def test_several_ce_matches_are_said_not_guessed(tmp_path):
    write_runs(tmp_path, "ce", CE_ACCURACY, name="ce-1", params={"tau": 1.0})
    write_runs(tmp_path, "ce", CE_ACCURACY[::-1], name="ce-half", params={"tau": 0.5})
    write_runs(tmp_path, "hem", HEM_ACCURACY, HEM_AUROC)
    rows = as_json(tmp_path)
    assert [(row["loss"], row["tau"]) for row in rows] == [("ce", 0.5), ("ce", 1.0), ("hem", None)]
    hem = rows[2]
    assert (hem["baseline"], hem["ce_matches"]) == ("several", 2)
    assert all(summary["delta"] is None for summary in hem["metrics"].values())
    table = github_rows(tmp_path)
    assert table[2]["clean_accuracy vs ce"] == "2 CE match"


def test_the_loss_parameters_of_ce_do_not_have_to_match(tmp_path):
    write_runs(tmp_path, "ce", CE_ACCURACY, params={"tau": 2.0})
    write_runs(tmp_path, "hem", HEM_ACCURACY, params={"M": 500})
    assert as_json(tmp_path)[1]["baseline"] == "matched"


# ---------------------------------------------------------------- marks: best mean, few runs


@pytest.mark.parametrize("name, lower", [("clean_accuracy", False), ("unknown_class_auroc", False), ("miou", False),
                                         ("ece", True), ("nll", True), ("test_error", True), ("train_loss", True),
                                         ("fpr95", True), ("unknown_fpr95_msp_all", True), ("brier", True),
                                         ("dar_msp_linf", False), ("unknown_auroc_mls_real", False),
                                         ("robust_accuracy_l2", False), ("average_forgetting", True),
                                         ("final_accuracy", False), ("backward_transfer", False)])
def test_lower_is_better(name, lower):
    assert lower_is_better(name) is lower


def test_best_mean_is_bold_and_lower_is_better_picks_the_minimum(tmp_path):
    for loss, accuracies, errors in [("ce", CE_ACCURACY, [9.0, 8.0, 7.5]), ("hem", HEM_ACCURACY, [6.0, 5.0, 5.5]),
                                     ("focal", [91.0, 92.0, 92.0], [4.0, 4.5, 5.0])]:
        for seed, (accuracy, error) in enumerate(zip(accuracies, errors)):
            write(tmp_path / loss / f"{seed}.json", make_result(loss, seed, {"clean_accuracy": accuracy,
                                                                           "test_error": error}))
    rows = as_json(tmp_path)
    assert [row["loss"] for row in rows] == ["ce", "focal", "hem"]
    # highest accuracy: hem (94.17 > 91.67 > 91.17); lowest error: focal (4.5 < 5.5 < 8.17)
    assert [row["metrics"]["clean_accuracy"]["best"] for row in rows] == [False, False, True]
    assert [row["metrics"]["test_error"]["best"] for row in rows] == [False, True, False]
    table = github_rows(tmp_path)
    assert table[2]["clean_accuracy"] == f"**{np.mean(HEM_ACCURACY):.2f} ± {np.std(HEM_ACCURACY, ddof=1):.2f}**"
    assert table[1]["test_error"].startswith("**4.50 ± ") and not table[2]["test_error"].startswith("**")
    assert "bold: best mean of the metric within its group" in report(tmp_path, **QUIET)
    records = list(csv.DictReader(io.StringIO(report(tmp_path, fmt="csv", **QUIET))))
    assert [record["test_error_best"] for record in records] == ["false", "true", "false"]


def test_best_is_within_a_group_only(tmp_path):
    write_runs(tmp_path, "ce", CE_ACCURACY, dataset="a")
    write_runs(tmp_path, "hem", HEM_ACCURACY, dataset="a")
    write_runs(tmp_path, "ce", [50.0, 51.0], dataset="b")  # alone in its group: nothing to be best against
    rows = as_json(tmp_path)
    assert [(row["dataset"], row["metrics"]["clean_accuracy"]["best"]) for row in rows] == [
        ("a", False), ("a", True), ("b", False)]


@pytest.mark.parametrize("runs_per_side, flagged", [(2, True), (3, False)])
def test_few_runs_are_flagged_in_every_format(tmp_path, runs_per_side, flagged):
    write_runs(tmp_path, "ce", CE_ACCURACY[:runs_per_side])
    write_runs(tmp_path, "hem", HEM_ACCURACY[:runs_per_side])
    assert as_json(tmp_path)[1]["metrics"]["clean_accuracy"]["few_runs"] is flagged
    for fmt in ("github", "latex", "html"):
        text = report(tmp_path, fmt=fmt, **QUIET)
        assert ("†" in text) is flagged and ("fewer than 3 runs on a side" in text) is flagged
    assert github_rows(tmp_path)[1]["clean_accuracy vs ce"].endswith("†") is flagged
    records = list(csv.DictReader(io.StringIO(report(tmp_path, fmt="csv", **QUIET))))
    assert [record["clean_accuracy_few_runs"] for record in records] == ["", "true" if flagged else "false"]


# ---------------------------------------------------------------- results of the previous layout


def test_old_layout_results_are_reported_like_new_ones(tmp_path):
    write_runs(tmp_path / "old", "ce", CE_ACCURACY, layout="old")
    write_runs(tmp_path / "old", "hem", HEM_ACCURACY, layout="old")
    rows = as_json(tmp_path / "old")
    assert [(row["loss"], row["n"], row["baseline"]) for row in rows] == [("ce", 3, None), ("hem", 3, "matched")]
    assert "params" not in rows[1] and rows[1]["condition"]["loss.params"] == {}
    assert rows[1]["metrics"]["clean_accuracy"]["delta"] == pytest.approx(np.mean(HEM_ACCURACY) - np.mean(CE_ACCURACY))
    assert github_cells(tmp_path / "old")[0][:5] == ["task", "dataset", "arch", "loss", "n"]


def test_old_and_new_hem_stay_apart_and_both_match_ce(tmp_path):
    write_runs(tmp_path, "ce", CE_ACCURACY, layout="old")
    write_runs(tmp_path, "hem", HEM_ACCURACY, name="hem-old", layout="old")
    write_runs(tmp_path, "hem", HEM_ACCURACY, name="hem-new")
    rows = as_json(tmp_path)
    assert [(row["loss"], row["M"], row["baseline"]) for row in rows] == [
        ("ce", None, None), ("hem", 2000, "matched"), ("hem", None, "matched")]


def test_grouping_comes_from_the_recipe_not_the_condition_field(tmp_path):
    for seed, accuracy in enumerate(HEM_ACCURACY):
        result = make_result("hem", seed, {"clean_accuracy": accuracy})
        result["condition"] = {"seed": seed, "made": "up"}  # a stale or edited field changes nothing
        write(tmp_path / f"{seed}.json", result)
    (row,) = as_json(tmp_path)
    assert row["n"] == 3 and row["condition"]["loss.params.M"] == 2000
# ---------------------------------------------------------------- finding and loading files


def test_find_results_recurses_sorts_and_takes_files(tmp_path):
    files = [write(tmp_path / path, "{}") for path in ["b/x.json", "a/deep/er/y.json", "a/z.json"]]
    write(tmp_path / "a" / "notes.txt", "not json")
    extra = write(tmp_path.parent / f"{tmp_path.name}-extra.result", "{}")
    assert find_results([tmp_path]) == sorted(files)
    assert find_results([tmp_path / "b", extra, tmp_path / "b"]) == sorted([files[0], extra])


def test_find_results_missing_path_is_an_error(tmp_path):
    with pytest.raises(HemError, match="nope"):
        find_results([tmp_path / "nope"])


BAD_FILES = {
    "malformed.json": "{not json",
    "truncated.json": json.dumps(make_result("ce"))[:60],
    "running.json": make_result("ce", status="running"),
    "list.json": [make_result("ce")],
    "checkpoint-index.json": {"epoch": 3, "files": ["model.pt"]},
    "future.json": {**make_result("ce"), "schema_version": 99},
    "empty.json": "",
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_skipped_with_one_warning_naming_it(runs, name):
    bad = write(runs / "odd" / name, BAD_FILES[name])
    warnings = []
    rows = json.loads(report(runs, fmt="json", warn=warnings.append))
    assert len(warnings) == 1
    assert warnings[0].startswith(f"skipping {bad}: ") and "\n" not in warnings[0]
    assert [(row["loss"], row["n"]) for row in rows] == [("ce", 3), ("hem", 3)]


def test_load_results_keeps_good_files_in_order(tmp_path):
    good = [write(tmp_path / f"{k}.json", make_result("ce", k)) for k in range(2)]
    bad = write(tmp_path / "bad.json", "[]")
    warnings = []
    results = load_results([good[0], bad, good[1]], warnings.append)
    assert [result["recipe"]["seed"] for result in results] == [0, 1]
    assert warnings == [f"skipping {bad}: not a result (a JSON list, not an object)"]


def test_default_warning_goes_to_stderr(runs, capsys):
    write(runs / "bad.json", "{")
    report(runs)
    captured = capsys.readouterr()
    assert "skipping" in captured.err and "bad.json" in captured.err and captured.out == ""


def test_empty_directory_is_an_error(tmp_path):
    with pytest.raises(HemError, match="no result files under"):
        report(tmp_path)


def test_only_bad_files_is_an_error(tmp_path):
    write(tmp_path / "bad.json", "{")
    with pytest.raises(HemError, match="no complete result files"):
        report(tmp_path, warn=lambda message: None)


# ---------------------------------------------------------------- formats and options


def test_github_is_a_markdown_table(runs):
    text = report(runs, **QUIET)
    assert text.startswith("| task") and set(text.splitlines()[1]) <= set("|-: ")
    header, _, ce, hem = github_cells(runs)
    # HEM's M, margin, margin_index and CE's tau are implied by the loss: no column until one varies.
    # metrics by their display names (a metric hem does not know keeps its key), each followed by its Δ and p
    assert header == ["task", "dataset", "arch", "loss", "n",
                      "clean accuracy (%) ↑", "Δ vs CE [95% CI]", "p",
                      "unknown_class_auroc ↑", "Δ vs CE [95% CI]", "p"]
    assert ce[:5] == ["classify", "digits", "lenet", "ce", "3"] and ce[6:8] == ["", ""]
    assert hem[:5] == ["classify", "digits", "lenet", "hem", "3"]
    mean, std = np.mean(HEM_ACCURACY), np.std(HEM_ACCURACY, ddof=1)
    assert hem[5] == f"**{mean:.2f} ± {std:.2f}**"
    low, high = pooled_interval(HEM_ACCURACY, CE_ACCURACY)
    assert hem[6] == f"{mean - np.mean(CE_ACCURACY):+.2f} [{low:+.2f}, {high:+.2f}]"


def test_github_notes_follow_the_table_after_a_blank_line(runs):
    lines = report(runs, **QUIET).splitlines()
    blank = lines.index("")
    assert all(line.startswith("|") for line in lines[:blank])
    assert lines[blank + 1:] == ["- ↑ higher is better, ↓ lower is better",
                                 "- \\* p < 0.05 (two-sample t-test against the matched CE condition)",
                                 "- bold: best mean of the metric within its group"]


def test_latex_is_booktabs_with_raw_bold_and_escaped_text(runs):
    text = report(runs, fmt="latex", **QUIET)
    assert "\\toprule" in text and "\\bottomrule" in text and "\\end{tabular}" in text
    assert "unknown\\_class\\_auroc" in text
    # each metric's display name over its mean ± std, Δ and p columns (6-8: after task, dataset, arch, loss, n)
    assert "\\multicolumn{3}{c}{clean accuracy (\\%) \\ensuremath{\\uparrow}}" in text
    assert "\\cmidrule(lr){6-8} \\cmidrule(lr){9-11}" in text
    assert "\\ensuremath{\\Delta} vs CE [95\\% CI]" in text and "Δ" not in text and "↑" not in text
    assert f"\\textbf{{{np.mean(HEM_ACCURACY):.2f} ± " in text  # not \textbackslash{}textbf
    assert "textbackslash" not in text
    table, notes = text.split("\\end{tabular}")
    assert "\\noindent \\ensuremath{\\uparrow} higher is better" in notes
    assert "\\\\\n{*} p \\ensuremath{<} 0.05" in notes and "bold: best mean" in notes  # not \\* (a line break)


class CellParser(HTMLParser):
    """The text of every <th>/<td>, row by row, and which cells were bold."""

    def __init__(self):
        super().__init__()
        self.rows, self.bold, self._cell, self._in_bold = [], set(), None, False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "b":
            self._in_bold = True
        elif tag == "br" and self._cell is not None:  # a line break inside a cell reads as a space
            self._cell += " "

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(self._cell.strip())
            self._cell = None
        elif tag == "b":
            self._in_bold = False
            self.bold.add((len(self.rows) - 1, len(self.rows[-1])))

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data.replace("\xa0", " ")  # a non-breaking space (name&nbsp;↑) is a space


def html_cells(text):
    parser = CellParser()
    parser.feed(text)
    return parser


def test_html_cells_equal_the_github_cells_and_text_is_escaped(tmp_path):
    write_runs(tmp_path, "ce", CE_ACCURACY[:2], dataset="<x>")
    write_runs(tmp_path, "hem", HEM_ACCURACY[:2], dataset="<x>")
    text = report(tmp_path, fmt="html", **QUIET)
    assert text.startswith("<!DOCTYPE html>") and "&lt;x&gt;" in text and "<x>" not in text
    parsed = html_cells(text)
    header, _, *body = github_cells(tmp_path)
    # two header rows: the key columns and each metric's name, then the metric's sub-columns
    assert parsed.rows[:2] == [["task", "dataset", "arch", "loss", "n", "clean accuracy (%) ↑"],
                               ["mean ± std", "Δ vs CE [95% CI]", "p"]]
    assert parsed.rows[2:] == [[cell.strip("*") for cell in line] for line in body]
    bold = {(row + 2, column) for row, line in enumerate(body) for column, cell in enumerate(line)
            if cell.startswith("**")}
    assert parsed.bold == bold and bold
    assert parsed.rows[3][header.index("Δ vs CE [95% CI]")].endswith("†")
    assert "<li>† fewer than 3 runs on a side</li>" in text and "<li>* p &lt; 0.05" not in text


def test_csv_parses_back_to_the_same_numbers(runs):
    records = list(csv.DictReader(io.StringIO(report(runs, fmt="csv", **QUIET))))
    assert [record["loss"] for record in records] == ["ce", "hem"]
    ce, hem = records
    assert "M" not in ce and "tau" not in ce  # loss parameters that do not vary within a loss
    assert (ce["baseline"], hem["baseline"]) == ("", "matched")
    assert float(hem["clean_accuracy_mean"]) == pytest.approx(np.mean(HEM_ACCURACY), rel=1e-12)
    assert float(hem["clean_accuracy_std"]) == pytest.approx(np.std(HEM_ACCURACY, ddof=1), rel=1e-12)
    assert int(hem["clean_accuracy_n"]) == 3 and int(hem["n"]) == 3
    assert float(hem["clean_accuracy_p"]) == pytest.approx(stats.ttest_ind(HEM_ACCURACY, CE_ACCURACY).pvalue)
    low, high = pooled_interval(HEM_ACCURACY, CE_ACCURACY)
    assert (float(hem["clean_accuracy_ci_low"]), float(hem["clean_accuracy_ci_high"])) == pytest.approx((low, high))
    assert (hem["clean_accuracy_few_runs"], hem["clean_accuracy_best"]) == ("false", "true")
    assert ce["clean_accuracy_delta"] == "" and ce["clean_accuracy_p"] == "" and ce["clean_accuracy_ci_low"] == ""


def test_json_matches_the_rows(runs):
    ce, hem = json.loads(render(build_rows(load_results(find_results([runs]))), "json"))
    for record, accuracy, auroc in [(ce, CE_ACCURACY, CE_AUROC), (hem, HEM_ACCURACY, HEM_AUROC)]:
        for name, values in [("clean_accuracy", accuracy), ("unknown_class_auroc", auroc)]:
            assert record["metrics"][name]["mean"] == pytest.approx(np.mean(values), rel=1e-12)
            assert record["metrics"][name]["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert hem["metrics"]["unknown_class_auroc"]["p"] == pytest.approx(
        stats.ttest_ind(HEM_AUROC, CE_AUROC, equal_var=True).pvalue, rel=1e-9)
    assert list(hem)[-5:] == ["n", "baseline", "ce_matches", "condition", "metrics"]


def test_tiny_p_is_shown_as_below_one_in_a_thousand(tmp_path):
    # [99, 99.1, 99.2] vs [90, 90.1, 90.2]: t = 9 / (0.1 sqrt(2/3)) = 110.2 with 4 degrees of freedom,
    # p = 4.0e-8, far below 0.001; interval 9 ± 2.7764 * 0.1 * 0.8165 = 9 ± 0.23.
    write_runs(tmp_path, "ce", [90.0, 90.1, 90.2])
    write_runs(tmp_path, "hem", [99.0, 99.1, 99.2])
    hem = github_rows(tmp_path)[1]
    assert (hem["clean_accuracy vs ce"], hem["clean_accuracy p"]) == ("+9.00 [+8.77, +9.23]", "<0.001*")


def test_unknown_format_lists_the_valid_ones(runs):
    with pytest.raises(HemError, match="'xml'.*csv, github, html, json, latex"):
        report(runs, fmt="xml")
    with pytest.raises(HemError, match="csv, github, html, json, latex"):
        render([], "xml")


def test_metrics_restrict_and_order_columns(runs):
    rows = as_json(runs, metrics=["unknown_class_auroc", "clean_accuracy"])
    assert list(rows[0]["metrics"]) == ["unknown_class_auroc", "clean_accuracy"]
    assert list(as_json(runs, metrics="unknown_class_auroc")[0]["metrics"]) == ["unknown_class_auroc"]
    assert list(as_json(runs, metrics=["unknown_class_auroc,clean_accuracy"])[1]["metrics"]) == [
        "unknown_class_auroc", "clean_accuracy"]


def test_unknown_metric_lists_the_present_ones(runs):
    with pytest.raises(HemError, match="'dar_linf'.*clean_accuracy, unknown_class_auroc"):
        report(runs, metrics=["dar_linf"], **QUIET)


def test_metrics_naming_nothing_is_an_error(runs):
    with pytest.raises(HemError, match="--metrics names no metric; present: clean_accuracy, unknown_class_auroc"):
        report(runs, metrics=",", **QUIET)


# ---------------------------------------------------------------- --plot


SHOWN_AS = {"clean_accuracy": "clean accuracy (%) ↑", "unknown_class_auroc": "unknown_class_auroc ↑"}
X_LABELS = {"clean accuracy (%) ↑": "Δ vs CE (pp)   better →", "unknown_class_auroc ↑": "Δ vs CE   better →"}


def plotted(figure):
    """(panel title, label, delta, ci_low, ci_high) of every error bar, read back from the Figure's artists."""
    found = []
    for ax in figure.axes:
        if not ax.axison:  # the empty cell of a grid with an odd number of panels
            continue
        labels = {round(tick): label.get_text() for tick, label in zip(ax.get_yticks(), ax.get_yticklabels())}
        assert ax.get_xlabel() == X_LABELS[ax.get_title()]
        for container in ax.containers:
            data_line, _, bars = container.lines
            (x,), (y,) = data_line.get_xdata(), data_line.get_ydata()
            low = high = None
            if bars:
                (low, bar_y), (high, _) = bars[0].get_segments()[0]
                assert bar_y == y
            found.append((ax.get_title(), labels[round(y)], x, low, high))
    return found


@pytest.fixture
def sweep(tmp_path):
    """CE, HEM at M=500 and M=2000 (3 runs each) and focal (2 runs), two metrics; focal lacks the AUROC."""
    write_runs(tmp_path, "ce", CE_ACCURACY, CE_AUROC)
    write_runs(tmp_path, "hem", [93.0, 94.0, 94.5], [83.0, 84.0, 82.0], name="hem-500", params={"M": 500})
    write_runs(tmp_path, "hem", HEM_ACCURACY, HEM_AUROC, name="hem-2000")
    write_runs(tmp_path, "focal", [90.5, 92.5])
    return tmp_path


def test_plot_draws_the_json_delta_and_interval(sweep, tmp_path_factory, monkeypatch):
    import hemcli.report.plot as report_plot

    figures = []
    real_figure = report_plot.delta_figure
    monkeypatch.setattr(report_plot, "delta_figure",
                        lambda points, title: figures.append((real_figure(points, title), points)) or figures[-1][0])
    png = tmp_path_factory.mktemp("plots") / "delta.png"
    rows = json.loads(report(sweep, fmt="json", plot=png, **QUIET))
    # one figure per metric group: clean accuracy in delta.png, the metric hem does not know beside it
    assert sorted(path.name for path in png.parent.iterdir()) == ["delta-other.png", "delta.png"]
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    expected = []
    for metric in ("clean_accuracy", "unknown_class_auroc"):
        for row in rows[1:]:
            summary = row["metrics"][metric]
            if summary is None:
                continue
            label = "focal †" if row["loss"] == "focal" else f"hem M={row['M']}"
            expected.append((metric, label, summary["delta"], summary["ci_low"], summary["ci_high"], summary["p"]))
    drawn = [item for figure, _ in figures for item in plotted(figure)]
    assert [item[:2] for item in drawn] == [(SHOWN_AS[metric], label) for metric, label, *_ in expected]
    assert [tuple(point) for _, points in figures for point in points] == expected
    for item, wanted in zip(drawn, expected):
        assert item[2:] == pytest.approx(wanted[2:5], rel=1e-12, abs=1e-12)


def test_plot_point_without_interval_has_no_bar(tmp_path):
    from hemcli.report.plot import delta_figure, plot_points

    write_runs(tmp_path, "ce", CE_ACCURACY)
    write_runs(tmp_path, "hem", HEM_ACCURACY[:1])
    figure = delta_figure(plot_points(build_rows(load_results(find_results(tmp_path)))))
    delta = HEM_ACCURACY[0] - np.mean(CE_ACCURACY)
    assert plotted(figure) == [("clean accuracy (%) ↑", "hem †", pytest.approx(delta), None, None)]


def snapshot(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_plot_into_a_missing_folder_is_an_error_and_writes_nothing(sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    before = snapshot(sweep), snapshot(out)
    with pytest.raises(HemError, match=r"^cannot write plot .*delta.png: no such folder .*nope$"):
        report(sweep, plot=out / "nope" / "delta.png", **QUIET)
    with pytest.raises(HemError, match="it is a folder"):
        report(sweep, plot=out, **QUIET)
    assert (snapshot(sweep), snapshot(out)) == before


def test_nothing_to_plot_is_an_error_and_writes_nothing(tmp_path, tmp_path_factory):
    write_runs(tmp_path, "ce", CE_ACCURACY, optim={"name": "sgd", "lr": 0.01})
    write_runs(tmp_path, "hem", HEM_ACCURACY)
    out = tmp_path_factory.mktemp("out")
    with pytest.raises(HemError, match="^nothing to plot: no loss has a matched CE condition$"):
        report(tmp_path, plot=out / "delta.png", **QUIET)
    assert snapshot(out) == []


def test_plot_without_matplotlib_is_an_error(runs, tmp_path_factory, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path_factory.mktemp("out")
    with pytest.raises(HemError, match=r"^--plot needs matplotlib: pip install matplotlib$"):
        report(runs, plot=out / "delta.png", **QUIET)
    assert snapshot(out) == []


# ---------------------------------------------------------------- each file once, every skip warned


def test_a_folder_reached_twice_counts_once(runs):
    assert [row["n"] for row in as_json([runs, runs / ".." / runs.name])] == [3, 3]
    (runs / "again").symlink_to(runs / "ce")
    (runs / "one.json").symlink_to(runs / "hem" / "seed0" / "result.json")
    assert [row["n"] for row in as_json(runs)] == [3, 3]


def test_link_loop_and_broken_link_are_warned(runs):
    (runs / "ce" / "loop").symlink_to(runs)
    (runs / "gone.json").symlink_to(runs / "missing.json")
    (runs / "self").symlink_to(runs / "self")
    warnings = []
    rows = json.loads(report(runs, fmt="json", warn=warnings.append))
    assert [row["n"] for row in rows] == [3, 3]
    assert sorted(warnings) == [
        f"skipping {runs / 'ce' / 'loop'}: a link back to {runs.resolve()}, which is already being searched",
        f"skipping {runs / 'gone.json'}: a broken link (or a loop of links)",
        f"skipping {runs / 'self'}: a broken link (or a loop of links)",
    ]


def test_unreadable_folder_is_warned(runs, monkeypatch):
    import os

    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "hem":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    warnings = []
    rows = json.loads(report(runs, fmt="json", warn=warnings.append))
    assert [row["loss"] for row in rows] == ["ce"]
    assert warnings == [f"skipping {runs / 'hem'}: cannot read the folder (Permission denied)"]


@pytest.mark.parametrize("stored, shown", [
    ('"97"', 'is not a number ("97")'), ("null", "is not a number (null)"), ("true", "is not a number (true)"),
    ("NaN", "is nan"), ("-Infinity", "is -inf"), ("9" * 5000, "is inf"),
    ("9" * 400, "is too large for a number (400 digits)"),
], ids=["string", "null", "bool", "nan", "-inf", "5000 digits", "400 digits"])
def test_a_metric_that_is_no_finite_number_is_left_out_with_a_warning(runs, stored, shown):
    bad = runs / "hem" / "seed2" / "result.json"
    text = json.dumps(make_result("hem", 2, {"clean_accuracy": 0.0, "unknown_class_auroc": HEM_AUROC[2]}))
    write(bad, text.replace("0.0", stored, 1))
    warnings = []
    _, hem = json.loads(report(runs, fmt="json", warn=warnings.append))
    assert warnings == [f"{bad}: metric 'clean_accuracy' {shown}; left out of the table"]
    assert hem["n"] == 3 and hem["metrics"]["clean_accuracy"]["n"] == 2
    assert hem["metrics"]["clean_accuracy"]["mean"] == pytest.approx(np.mean(HEM_ACCURACY[:2]))
    assert hem["metrics"]["unknown_class_auroc"]["n"] == 3


def test_huge_values_average_without_overflow(tmp_path):
    write_runs(tmp_path, "ce", [1e308, 1e308, 1e308])
    write_runs(tmp_path, "hem", [1.7e308, -1.7e308])
    ce, hem = as_json(tmp_path)
    assert (ce["metrics"]["clean_accuracy"]["mean"], ce["metrics"]["clean_accuracy"]["std"]) == (1e308, 0.0)
    # mean 0; std sqrt(2 * 1.7e308^2 / 1) = 2.40e308 is beyond the largest float: infinite, not an error
    assert hem["metrics"]["clean_accuracy"]["mean"] == 0.0
    assert "inf" in report(tmp_path, warn=lambda message: None)


def test_deeply_nested_json_is_skipped_with_a_warning(runs):
    deep = write(runs / "deep.json", "[" * 100_000 + "]" * 100_000)
    warnings = []
    report(runs, warn=warnings.append)
    assert warnings == [f"skipping {deep}: nested too deeply to be a result"]


def test_report_imports_neither_torch_nor_scipy():
    code = "import sys, hemcli.report; print(sorted({'torch', 'scipy'} & set(sys.modules)))"
    root = Path(__file__).resolve().parents[1]
    output = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]"
