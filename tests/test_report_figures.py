"""`hem report` for a paper draft (issue 28): human metric names with units and better directions, the
headline metrics by default and groups in --metrics, --plot as PNG, PDF or SVG with one figure per
metric group and the setting in the title, a standalone HTML page, CSV and JSON that end in one newline."""

import base64
import csv
import io
import json
import re
import struct
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats

from hemcli.cli import main
from hemcli.errors import HemError
from hemcli.report import build_rows, display_name, find_results, load_results, lower_is_better, metric_name, report
from test_report import QUIET, make_result, write

SCORES = ("msp", "mls", "energy", "gen")
OOD = [f"unknown_{measure}_{score}_{group}" for score in SCORES for group in ("synthetic", "real", "all")
       for measure in ("auroc", "fpr95")]
THREE_EVALUATIONS = ["clean_accuracy", *OOD, "ece", "nll", "brier"]  # --eval clean,ood,calibration
CE_SHIFT, HEM_SHIFT = [0.0, 1.0, 2.5], [3.0, 4.5, 5.0]


def metrics_of(shift: float, seed: int) -> dict:
    """Every metric of a clean, ood and calibration run, each its own number (so no two columns agree)."""
    return {name: 50.0 + index + shift + 0.1 * seed * index for index, name in enumerate(THREE_EVALUATIONS)}


@pytest.fixture
def evaluated(tmp_path):
    """Three CE and three HEM runs on fashion-mnist / lenet with the metrics of three evaluations."""
    for loss, shifts in (("ce", CE_SHIFT), ("hem", HEM_SHIFT)):
        for seed, shift in enumerate(shifts):
            write(tmp_path / "results" / loss / f"seed{seed}.json",
                  make_result(loss, seed, metrics_of(shift, seed), dataset="fashion-mnist"))
    return tmp_path / "results"


def cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def headers(paths, **kwargs) -> list[str]:
    return [cell.strip() for cell in report(paths, **QUIET, **kwargs).splitlines()[0].strip("|").split("|")]


# ---------------------------------------------------------------- names


def suite_metric_names() -> set[str]:
    """The metric keys the evaluation suite, the continual and the segment task really write: ood and
    shots run on stand-in subjects, attack's keys from its f-strings (AutoAttack is too slow here)."""
    from hemcli.continual.measure import matrix_metrics
    from hemcli.evaluation.suite import ATTACK_NORMS, calibration, ood, shots
    from hemcli.metrics import SCORES as SCORE_FUNCTIONS
    from hemcli.tasks.segment import _summary

    torch.manual_seed(0)
    images = torch.rand(20, 1, 28, 28)
    labels = torch.arange(20) % 4
    data = SimpleNamespace(test_x=images, test_y=labels, held_out_x=torch.rand(10, 1, 28, 28), real_unknown={},
                           class_counts=lambda: [150, 50, 10, 5])
    subject = SimpleNamespace(test_logits=torch.randn(20, 4, dtype=torch.float64), data=data,
                              settings={"scores": list(SCORE_FUNCTIONS), "ood_samples": 8, "seed": 0},
                              cfg={"dataset": {"name": "digits"}}, logits=lambda x: torch.randn(len(x), 4))
    names = set(ood(subject)[0]) | set(calibration(subject)[0]) | set(shots(subject)[0]) | {"clean_accuracy",
                                                                                           "corrupt_accuracy"}
    for norm in ATTACK_NORMS:
        names |= {f"robust_accuracy_{norm}"} | {f"dar_{score}_{norm}" for score in SCORE_FUNCTIONS}
    names |= {f"dar_{score}_mean" for score in SCORE_FUNCTIONS}
    names |= set(matrix_metrics([[90.0, 10.0], [80.0, 70.0]], [10, 10]))
    names |= {key for key, value in _summary(torch.eye(3, dtype=torch.long) * 5).items() if isinstance(value, float)}
    return names


def test_every_metric_hem_writes_has_a_name_a_group_and_the_arrow_of_lower_is_better():
    names = suite_metric_names()
    assert len(names) >= 40 and {"unknown_auroc_gen_real", "few_shot_accuracy", "backward_transfer"} <= names
    for key in names:
        name = metric_name(key)
        assert name.group != "other" and name.label != key, key
        assert name.display.endswith("↓" if lower_is_better(key) else "↑"), key
    assert {metric_name(key).group for key in names} == {"clean", "shots", "corrupt", "ood", "dar", "robust",
                                                         "calibration", "continual", "segment"}


@pytest.mark.parametrize("key, shown", [
    ("clean_accuracy", "clean accuracy (%) ↑"), ("ece", "ECE (%) ↓"), ("nll", "NLL (nats) ↓"),
    ("brier", "Brier score ↓"), ("unknown_auroc_msp_all", "AUROC, MSP, all unknown sets (%) ↑"),
    ("unknown_fpr95_energy_real", "FPR95, energy, real unknown sets (%) ↓"),
    ("dar_msp_linf", "DAR, MSP, ℓ∞ (%) ↑"), ("dar_gen_mean", "DAR, GEN, mean of ℓ∞ and ℓ2 (%) ↑"),
    ("robust_accuracy_l2", "robust accuracy, ℓ2 (%) ↑"),
    ("class_9_accuracy", "class 9 accuracy (%) ↑"), ("average_forgetting", "average forgetting (pp) ↓"),
    ("backward_transfer", "backward transfer (pp) ↑"), ("mean_iou", "mIoU (%) ↑"),
    ("train_error_rate", "train_error_rate ↓"),  # unknown to hem: its key, the arrow lower_is_better gives
])
def test_display_names(key, shown):
    assert display_name(key) == shown


# ---------------------------------------------------------------- which metrics


def test_the_default_shows_the_headline_metrics_far_fewer_than_all(evaluated):
    default, every = headers(evaluated), headers(evaluated, metrics="all")
    # per metric with a CE comparison: mean ± std, Δ and p
    assert default == ["task", "dataset", "arch", "loss", "n",
                       "clean accuracy (%) ↑", "Δ vs CE [95% CI]", "p",
                       "AUROC, MSP, all unknown sets (%) ↑", "Δ vs CE [95% CI]", "p",
                       "FPR95, MSP, all unknown sets (%) ↓", "Δ vs CE [95% CI]", "p",
                       "ECE (%) ↓", "Δ vs CE [95% CI]", "p"]
    assert len(every) == 5 + 3 * len(THREE_EVALUATIONS) == 89 and len(default) == 17
    assert max(map(len, report(evaluated, **QUIET).splitlines())) < 400


def json_metrics(paths, **kwargs) -> list[str]:
    return list(json.loads(report(paths, fmt="json", **QUIET, **kwargs))[0]["metrics"])


def test_groups_select_their_metrics_and_mix_with_names(evaluated):
    assert json_metrics(evaluated, metrics="ood") == [name for name in THREE_EVALUATIONS if name.startswith("unknown_")]
    assert json_metrics(evaluated, metrics="calibration,clean_accuracy") == ["ece", "nll", "brier", "clean_accuracy"]
    assert json_metrics(evaluated, metrics="headline,nll") == [
        "clean_accuracy", "unknown_auroc_msp_all", "unknown_fpr95_msp_all", "ece", "nll"]
    assert json_metrics(evaluated) == THREE_EVALUATIONS  # csv and json: every metric without --metrics
    assert json_metrics(evaluated, metrics="ece,clean,ece") == ["ece", "clean_accuracy"]  # as asked, once each


@pytest.mark.parametrize("asked, problem", [
    ("ood,dar_msp_lnope", "unknown metric 'dar_msp_lnope'"),
    ("dar", "no dar metrics in these results (--eval attack measures them)")])
def test_an_unknown_name_is_one_line_with_the_groups_and_some_names(evaluated, capsys, asked, problem):
    code, out, err = cli(capsys, "report", evaluated, "--metrics", asked)
    assert (code, out) == (2, "") and err.count("\n") == 1
    # the headline metrics first, then the others in group order
    assert err.startswith(f"hem: error: {problem}; valid choices: clean_accuracy, unknown_auroc_msp_all, "
                          "unknown_fpr95_msp_all, ece, unknown_auroc_msp_synthetic, ")
    assert err.endswith(" and 18 more; groups: all, headline, clean, ood, calibration\n")


# ---------------------------------------------------------------- --plot


def png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF-"), (".SVG", b"<?xml")])
def test_the_plot_format_follows_the_extension(evaluated, tmp_path, suffix, magic):
    target = tmp_path / f"delta{suffix}"
    report(evaluated, plot=target, **QUIET)
    files = sorted(path.name for path in tmp_path.iterdir() if path.is_file())
    assert files == [f"delta-calibration{suffix}", f"delta-ood{suffix}", f"delta{suffix}"]  # one per group
    for name in files:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(magic)
        if suffix == ".SVG":
            assert b"<svg" in data[:1000]


@pytest.mark.parametrize("name", ["delta.gif", "delta.jpeg", "delta", "delta.png.txt"])
def test_another_extension_is_refused_before_any_work(tmp_path, capsys, name):
    before = sorted(tmp_path.iterdir())
    # the results path does not exist: the extension is checked first, so that is not what is said
    code, out, err = cli(capsys, "report", tmp_path / "no-results", "--plot", tmp_path / name)
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith(f"hem: error: cannot write plot {tmp_path / name}: ")
    assert err.endswith("; valid choices: .png, .pdf, .svg\n")
    assert sorted(tmp_path.iterdir()) == before


def drawn_figures(paths, monkeypatch, **kwargs):
    """Every Figure the plot draws, with its points, by running the report."""
    import hemcli.report.plot as report_plot

    figures = []
    real = report_plot.delta_figure
    monkeypatch.setattr(report_plot, "delta_figure",
                        lambda points, title: figures.append((real(points, title), points)) or figures[-1][0])
    report(paths, **QUIET, **kwargs)
    return figures


def test_the_title_names_the_group_dataset_arch_runs_and_seeds(evaluated, tmp_path, monkeypatch):
    figures = drawn_figures(evaluated, monkeypatch, plot=tmp_path / "d.png")
    titles = [figure.get_suptitle() for figure, _ in figures]
    setting = "classify · fashion-mnist · lenet · n = 3 runs per condition (seeds 0–2)"
    assert titles == [f"Clean accuracy: difference to CE\n{setting}",
                      f"Unknown-class rejection: difference to CE\n{setting}",
                      f"Calibration: difference to CE\n{setting}"]
    assert [ax.get_title() for ax in figures[1][0].axes] == ["AUROC, MSP, all unknown sets (%) ↑",
                                                             "FPR95, MSP, all unknown sets (%) ↓"]
    assert figures[2][0].axes[0].get_xlabel() == "Δ vs CE (pp)   ← better"


def test_a_significant_difference_is_marked_exactly_where_p_is_below_005(tmp_path, monkeypatch):
    # Against CE's clean accuracy [90, 91, 92.5]: HEM +3 is significant, focal +1 and LA +2.6 (2 runs) are not,
    # logit-norm -4 is (and worse); ECE rises for HEM (worse for a lower-is-better metric).
    runs = {"ce": ([90.0, 91.0, 92.5], [2.0, 2.5, 3.0]), "hem": ([93.0, 94.0, 95.5], [6.0, 6.5, 7.5]),
            "focal": ([92.0, 90.0, 94.5], [2.1, 2.4, 3.1]), "la": ([93.0, 94.0], [2.0, 2.2]),
            "logitnorm": ([86.0, 87.0, 88.5], [1.0, 1.5, 2.0])}
    for loss, (accuracies, eces) in runs.items():
        for seed, (accuracy, ece) in enumerate(zip(accuracies, eces)):
            write(tmp_path / "r" / loss / f"{seed}.json",
                  make_result(loss, seed, {"clean_accuracy": accuracy, "ece": ece}))
    figures = drawn_figures(tmp_path / "r", monkeypatch, plot=tmp_path / "d.svg")
    checked = 0
    for figure, points in figures:
        (ax,) = figure.axes
        for container, text, point in zip(ax.containers, ax.texts, points):
            loss = point.label.split()[0]
            values, baseline = (runs[loss][point.metric == "ece"], runs["ce"][point.metric == "ece"])
            p = stats.ttest_ind(values, baseline, equal_var=True).pvalue
            significant = bool(p < 0.05)
            assert text.get_text() == ("p < 0.001 *" if p < 0.001 else f"p = {p:.3f}" + (" *" if significant else ""))
            data_line = container.lines[0]
            assert (data_line.get_markerfacecolor() != "white") is significant
            difference = np.mean(values) - np.mean(baseline)
            better = bool(difference < 0 if point.metric == "ece" else difference > 0)  # ECE: lower is better
            assert (data_line.get_color() == "#1f77b4") is better
            checked += significant
    assert checked == 3  # hem's accuracy and ECE, logitnorm's accuracy
    table = report(tmp_path / "r", **QUIET)
    stars = [line.split("|")[8].strip().endswith("*") for line in table.splitlines()[2:7]]
    assert stars == [False, False, True, False, True]  # ce, focal, hem, la, logitnorm: the same p


def test_every_metric_plotted_is_at_most_eight_panels_a_figure_of_a_readable_size(evaluated, tmp_path):
    report(evaluated, plot=tmp_path / "f.png", metrics="all", **QUIET)
    files = sorted(path.name for path in tmp_path.glob("*.png"))
    assert files == ["f-calibration.png", "f-ood-2.png", "f-ood-3.png", "f-ood.png", "f.png"]  # 24 ood: 8, 8, 8
    for name in files:
        width, height = png_size((tmp_path / name).read_bytes())
        assert width <= 1400 and height <= 1400, (name, width, height)


# ---------------------------------------------------------------- html, csv, json


class PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], {}
        self._open = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))
        self._open = tag

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open:
            self.text[self._open] = self.text.get(self._open, "") + data


def test_html_is_a_standalone_page_with_the_figures_in_it(evaluated, tmp_path):
    page = report(evaluated, fmt="html", plot=tmp_path / "d.pdf", **QUIET)
    assert page.startswith("<!DOCTYPE html>\n") and page.endswith("</html>")
    parser = PageParser()
    parser.feed(page)
    parser.close()
    assert ("meta", {"charset": "utf-8"}) in parser.attrs
    setting = "classify · fashion-mnist · lenet · n = 3 runs per condition (seeds 0–2)"
    assert parser.text["title"] == f"hem report: {setting}"
    style = parser.text["style"]
    assert re.search(r"thead \{[^}]*position: sticky", style)
    assert re.search(r"td\.num[^{]*\{[^}]*text-align: right", style)
    assert {"num", "num first"} <= {attrs.get("class") for tag, attrs in parser.attrs if tag == "td"}
    assert page.index("</table>") < page.index('<ul class="notes">') < page.index("<figure>")
    images = [attrs["src"] for tag, attrs in parser.attrs if tag == "img"]
    assert len(images) == 3  # the figures of the three groups, as SVG whatever the plot file's format
    for src in images:
        prefix, data = src.split(",", 1)
        assert prefix == "data:image/svg+xml;base64" and b"<svg" in base64.b64decode(data)[:1000]
    assert (tmp_path / "d.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_csv_and_json_end_in_one_newline_so_tail_gives_the_last_line(evaluated, capsys, fmt):
    code, out, _ = cli(capsys, "report", evaluated, "--format", fmt)
    assert code == 0 and out.endswith("\n") and not out.endswith("\n\n")
    last = out.split("\n")[-2]  # what `| tail -1` prints
    if fmt == "json":
        assert last == "]" and len(json.loads(out)) == 2
    else:
        records = list(csv.reader(io.StringIO(out)))
        assert last == ",".join(records[-1]) and records[-1][3] == "hem" and len(records) == 3


def test_build_rows_takes_group_names_too(evaluated):
    rows = build_rows(load_results(find_results(evaluated), **QUIET), "calibration")
    assert list(rows[0].metrics) == ["ece", "nll", "brier"]
    with pytest.raises(HemError, match=r"^no dar metrics in these results \(--eval attack measures them\); "):
        build_rows(load_results(find_results(evaluated), **QUIET), "dar")


def test_latex_numbers_have_minus_signs_and_names_keep_their_hyphens(tmp_path):
    for loss, accuracies in (("ce", [90.0, 91.0, 92.5]), ("hem", [88.0, 89.0, 90.0])):
        for seed, accuracy in enumerate(accuracies):
            write(tmp_path / loss / f"{seed}.json",
                  make_result(loss, seed, {"clean_accuracy": accuracy}, dataset="cifar-10"))
    (hem,) = [line for line in report(tmp_path, fmt="latex", **QUIET).splitlines() if line.startswith("classify")
              and "& hem" in line]
    delta = 89.0 - np.mean([90.0, 91.0, 92.5])  # -2.17
    assert hem.startswith("classify & cifar-10 & lenet & hem")
    assert f"\\ensuremath{{-}}{abs(delta):.2f} [" in hem and f"{delta:.2f}" not in hem
