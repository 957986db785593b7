"""`hem report`: finding and loading result files, grouping over seeds, statistics, CE comparison, formats."""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hemcli.errors import HemError
from hemcli.report import build_rows, find_results, load_results, render, report

CE_ACCURACY = [90.0, 91.0, 92.5]
HEM_ACCURACY = [93.0, 94.5, 95.0]
CE_AUROC = [80.0, 82.0, 81.0]
HEM_AUROC = [85.0, 84.0, 88.0]


def make_result(loss="hem", seed=0, metrics=None, task="classify", dataset="digits", arch="lenet",
                status="complete", **recipe_extra):
    """A result dict shaped like the ones `hem <task>` writes."""
    recipe = {
        "task": task, "dataset": {"name": dataset, "root": None}, "model": {"arch": arch},
        "loss": {"name": loss, "params": {}}, "optim": {"name": "sgd", "lr": 0.1},
        "epochs": 30, "batch_size": 128, "seed": seed, **recipe_extra,
    }
    return {
        "schema_version": 1, "task": task, "status": status, "recipe": recipe,
        "metrics": {"clean_accuracy": 97.5} if metrics is None else metrics,
        "history": [{"epoch": 1, "train_loss": 0.5, "train_accuracy": 80.0, "test_accuracy": 85.0, "seconds": 0.3}],
        "environment": {"python": "3.11"}, "timings": {"total_seconds": 12.0},
    }


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def write_runs(root: Path, loss: str, accuracies, aurocs=None, **kwargs) -> None:
    """One result per seed under root/<loss>/seed<k>/result.json (nested directories)."""
    for seed, accuracy in enumerate(accuracies):
        metrics = {"clean_accuracy": accuracy}
        if aurocs is not None and seed < len(aurocs):
            metrics["unknown_class_auroc"] = aurocs[seed]
        write(root / loss / f"seed{seed}" / "result.json", make_result(loss, seed, metrics, **kwargs))


@pytest.fixture
def runs(tmp_path):
    """Three CE and three HEM runs on digits/lenet, with two metrics each."""
    write_runs(tmp_path, "ce", CE_ACCURACY, CE_AUROC)
    write_runs(tmp_path, "hem", HEM_ACCURACY, HEM_AUROC)
    return tmp_path


def github_cells(paths, **kwargs):
    """The github table as a list of lines, each a list of stripped cell texts (line 1 is the rule)."""
    lines = report(paths, warn=lambda message: None, **kwargs).splitlines()
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]


def as_json(paths, **kwargs):
    return json.loads(report(paths, fmt="json", warn=lambda message: None, **kwargs))


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
    assert row["metrics"]["clean_accuracy"] == {"mean": 97.5, "std": None, "n": 1, "delta": None, "p": None}
    assert "97.50 ± —" in report(tmp_path, warn=lambda message: None)


def test_metric_missing_from_some_runs_counts_per_metric(tmp_path):
    write_runs(tmp_path, "hem", HEM_ACCURACY, aurocs=HEM_AUROC[:2])
    (row,) = as_json(tmp_path)
    assert row["n"] == 3
    assert row["metrics"]["clean_accuracy"]["n"] == 3
    auroc = row["metrics"]["unknown_class_auroc"]
    assert auroc["n"] == 2
    assert auroc["mean"] == pytest.approx(np.mean(HEM_AUROC[:2]))
    assert auroc["std"] == pytest.approx(np.std(HEM_AUROC[:2], ddof=1))
    assert "(n=2)" in report(tmp_path, warn=lambda message: None)


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


def test_extra_grouping_key_splits_rows_and_compares_within_it(tmp_path):
    for strategy, offset in [("naive", 0.0), ("ewc", 10.0)]:
        for loss, values in [("ce", CE_ACCURACY), ("hem", HEM_ACCURACY)]:
            shifted = [value - offset for value in values]
            write_runs(tmp_path / strategy, loss, shifted, task="continual", strategy={"name": strategy})
    rows = as_json(tmp_path)
    assert list(rows[0])[:6] == ["task", "dataset", "arch", "strategy", "loss", "n"]
    assert [(row["strategy"], row["loss"]) for row in rows] == [
        ("ewc", "ce"), ("ewc", "hem"), ("naive", "ce"), ("naive", "hem")]
    expected = np.mean(HEM_ACCURACY) - np.mean(CE_ACCURACY)
    for row in rows[1::2]:
        assert row["metrics"]["clean_accuracy"]["delta"] == pytest.approx(expected)


def test_no_extra_column_when_no_result_has_it(runs):
    assert "strategy" not in as_json(runs)[0]
    assert "strategy" not in report(runs, warn=lambda message: None).splitlines()[0]


# ---------------------------------------------------------------- difference to CE


def test_difference_and_p_value_match_scipy(runs):
    ce, hem = as_json(runs)
    assert ce["metrics"]["clean_accuracy"]["delta"] is None and ce["metrics"]["clean_accuracy"]["p"] is None
    for name, hem_values, ce_values in [("clean_accuracy", HEM_ACCURACY, CE_ACCURACY),
                                        ("unknown_class_auroc", HEM_AUROC, CE_AUROC)]:
        summary = hem["metrics"][name]
        assert summary["delta"] == pytest.approx(np.mean(hem_values) - np.mean(ce_values))
        assert summary["p"] == pytest.approx(stats.ttest_ind(hem_values, ce_values, equal_var=True).pvalue)


def test_hand_computed_t_test(tmp_path):
    # [4, 5, 6] vs [1, 2, 3]: pooled sd 1, t = 3 / sqrt(2/3) = 3.674 with 4 degrees of freedom, p = 0.0213.
    write_runs(tmp_path, "ce", [1.0, 2.0, 3.0])
    write_runs(tmp_path, "hem", [4.0, 5.0, 6.0])
    hem = as_json(tmp_path)[1]["metrics"]["clean_accuracy"]
    assert hem["delta"] == pytest.approx(3.0)
    assert hem["p"] == pytest.approx(0.0213, abs=5e-5)
    header, _, _, hem_cells = github_cells(tmp_path)
    hem_row = dict(zip(header, hem_cells))
    assert hem_row["clean_accuracy vs ce"] == "+3.00" and hem_row["clean_accuracy p"] == "0.021*"


def test_not_significant_has_no_star(tmp_path):
    write_runs(tmp_path, "ce", [1.0, 2.0, 3.0])
    write_runs(tmp_path, "hem", [1.5, 2.5, 3.5])
    hem = as_json(tmp_path)[1]["metrics"]["clean_accuracy"]
    assert hem["p"] > 0.05
    header, _, _, hem_cells = github_cells(tmp_path)
    assert dict(zip(header, hem_cells))["clean_accuracy p"] == f"{hem['p']:.3f}"


@pytest.mark.parametrize("ce_runs, hem_runs", [(1, 3), (3, 1), (1, 1)])
def test_no_comparison_with_fewer_than_two_runs(tmp_path, ce_runs, hem_runs):
    write_runs(tmp_path, "ce", CE_ACCURACY[:ce_runs])
    write_runs(tmp_path, "hem", HEM_ACCURACY[:hem_runs])
    hem = as_json(tmp_path)[1]["metrics"]["clean_accuracy"]
    assert hem["delta"] is None and hem["p"] is None
    assert "vs ce" not in report(tmp_path, warn=lambda message: None)


def test_no_comparison_without_a_ce_row(tmp_path):
    write_runs(tmp_path, "hem", HEM_ACCURACY)
    write_runs(tmp_path, "focal", CE_ACCURACY)
    assert all(row["metrics"]["clean_accuracy"]["delta"] is None for row in as_json(tmp_path))


def test_identical_constant_samples_have_delta_but_no_p(tmp_path):
    write_runs(tmp_path, "ce", [100.0, 100.0])
    write_runs(tmp_path, "hem", [100.0, 100.0])
    hem = as_json(tmp_path)[1]["metrics"]["clean_accuracy"]
    assert hem["delta"] == 0.0 and hem["p"] is None


def test_p_left_empty_without_scipy(runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)  # makes `from scipy import stats` raise ImportError
    hem = as_json(runs)[1]["metrics"]["clean_accuracy"]
    assert hem["delta"] == pytest.approx(np.mean(HEM_ACCURACY) - np.mean(CE_ACCURACY))
    assert hem["p"] is None


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
    text = report(runs, warn=lambda message: None)
    assert text.startswith("| task") and set(text.splitlines()[1]) <= set("|-: ")
    header, _, ce, hem = github_cells(runs)
    assert header == ["task", "dataset", "arch", "loss", "n",
                      "clean_accuracy", "clean_accuracy vs ce", "clean_accuracy p",
                      "unknown_class_auroc", "unknown_class_auroc vs ce", "unknown_class_auroc p"]
    assert ce[:5] == ["classify", "digits", "lenet", "ce", "3"] and ce[6:8] == ["", ""]
    mean, std = np.mean(HEM_ACCURACY), np.std(HEM_ACCURACY, ddof=1)
    assert hem[5] == f"{mean:.2f} ± {std:.2f}"
    assert hem[6] == f"{mean - np.mean(CE_ACCURACY):+.2f}"


def test_latex_is_booktabs(runs):
    text = report(runs, fmt="latex", warn=lambda message: None)
    assert "\\toprule" in text and "\\bottomrule" in text
    assert "clean\\_accuracy" in text


def test_csv_parses_back_to_the_same_numbers(runs):
    records = list(csv.DictReader(io.StringIO(report(runs, fmt="csv", warn=lambda message: None))))
    assert [record["loss"] for record in records] == ["ce", "hem"]
    ce, hem = records
    assert float(hem["clean_accuracy_mean"]) == pytest.approx(np.mean(HEM_ACCURACY), rel=1e-12)
    assert float(hem["clean_accuracy_std"]) == pytest.approx(np.std(HEM_ACCURACY, ddof=1), rel=1e-12)
    assert int(hem["clean_accuracy_n"]) == 3 and int(hem["n"]) == 3
    assert float(hem["clean_accuracy_p"]) == pytest.approx(stats.ttest_ind(HEM_ACCURACY, CE_ACCURACY).pvalue)
    assert ce["clean_accuracy_delta"] == "" and ce["clean_accuracy_p"] == ""


def test_json_matches_the_rows(runs):
    ce, hem = json.loads(render(build_rows(load_results(find_results([runs]))), "json"))
    for record, accuracy, auroc in [(ce, CE_ACCURACY, CE_AUROC), (hem, HEM_ACCURACY, HEM_AUROC)]:
        for name, values in [("clean_accuracy", accuracy), ("unknown_class_auroc", auroc)]:
            assert record["metrics"][name]["mean"] == pytest.approx(np.mean(values), rel=1e-12)
            assert record["metrics"][name]["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert hem["metrics"]["unknown_class_auroc"]["p"] == pytest.approx(
        stats.ttest_ind(HEM_AUROC, CE_AUROC, equal_var=True).pvalue, rel=1e-9)


def test_tiny_p_is_shown_as_below_one_in_a_thousand(tmp_path):
    # [99, 99.1, 99.2] vs [90, 90.1, 90.2]: t = 9 / (0.1 sqrt(2/3)) = 110.2 with 4 degrees of freedom,
    # p = 4.0e-8, far below 0.001.
    write_runs(tmp_path, "ce", [90.0, 90.1, 90.2])
    write_runs(tmp_path, "hem", [99.0, 99.1, 99.2])
    _, _, _, hem = github_cells(tmp_path)
    assert hem[6:8] == ["+9.00", "<0.001*"]


def test_unknown_format_lists_the_valid_ones(runs):
    with pytest.raises(HemError, match="html.*csv, github, json, latex"):
        report(runs, fmt="html")
    with pytest.raises(HemError, match="csv, github, json, latex"):
        render([], "html")


def test_metrics_restrict_and_order_columns(runs):
    rows = as_json(runs, metrics=["unknown_class_auroc", "clean_accuracy"])
    assert list(rows[0]["metrics"]) == ["unknown_class_auroc", "clean_accuracy"]
    assert list(as_json(runs, metrics="unknown_class_auroc")[0]["metrics"]) == ["unknown_class_auroc"]
    assert list(as_json(runs, metrics=["unknown_class_auroc,clean_accuracy"])[1]["metrics"]) == [
        "unknown_class_auroc", "clean_accuracy"]


def test_unknown_metric_lists_the_present_ones(runs):
    with pytest.raises(HemError, match="'dar_linf'.*clean_accuracy, unknown_class_auroc"):
        report(runs, metrics=["dar_linf"], warn=lambda message: None)


def test_metrics_naming_nothing_is_an_error(runs):
    with pytest.raises(HemError, match="--metrics names no metric; present: clean_accuracy, unknown_class_auroc"):
        report(runs, metrics=",", warn=lambda message: None)


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
