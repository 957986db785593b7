"""``hem continual``: benchmarks from the registry, strategy parameters, the counted loss, resume, and
split-digits end to end for every strategy with CE and HEM."""
from __future__ import annotations

import json

import pytest
import torch

from hemcli import recipes
from hemcli.continual import loop, measure
from hemcli.continual.benchmarks import BENCHMARKS, benchmark_info, build_stream, class_order
from hemcli.continual.build import build_strategy, find_plugin
from hemcli.continual.quiet import deprecations_hidden, import_avalanche
from hemcli.continual.strategies import STRATEGIES, strategy_params
from hemcli.data import load_dataset
from hemcli.errors import HemError
from hemcli.tasks import continual


def config(**sets) -> dict:
    cfg = recipes.resolve(continual.schema(), "continual", None, {}, [f"{k}={v}" for k, v in sets.items()])
    return continual.complete(cfg)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# ---------------------------------------------------------------- benchmarks


def test_split_task_scenario_relabels_each_experience_from_zero(digits):
    stream = build_stream(benchmark_info("split-digits"), digits, 5, "task", seed=3)
    order = class_order(10, 3)
    assert stream.order == order and (stream.heads, stream.outputs) == (5, 2)
    for e, exp in enumerate(stream.experiences):
        assert exp.classes == order[2 * e:2 * e + 2] and exp.task == e
        for local, cls in enumerate(exp.classes):  # local label k is the k-th class of the experience
            assert (exp.train_y == local).sum() == (digits.train_y == cls).sum()
            assert (exp.test_y == local).sum() == (digits.test_y == cls).sum()
    assert sum(len(e.train_y) for e in stream.experiences) == len(digits.train_y)


def test_split_class_scenario_keeps_the_labels_and_one_head(digits):
    stream = build_stream(benchmark_info("split-digits"), digits, 5, "class", seed=3)
    assert (stream.heads, stream.outputs) == (1, 10)
    for exp in stream.experiences:
        assert set(exp.train_y.tolist()) == set(exp.classes) and exp.task == 0


def test_the_class_order_depends_on_the_seed_only():
    assert class_order(10, 1) == class_order(10, 1) != class_order(10, 2)
    assert sorted(class_order(100, 5)) == list(range(100))


def test_permuted_experiences_are_pixel_permutations_of_the_whole_set(digits):
    stream = build_stream(benchmark_info("permuted-digits"), digits, 3, "domain", seed=0)
    first, second = stream.experiences[0], stream.experiences[1]
    flat = digits.train_x.flatten(1)
    for exp in (first, second):
        assert torch.equal(exp.train_y, digits.train_y)
        assert torch.equal(exp.train_x.flatten(1).sort(1).values, flat.sort(1).values)
    assert not torch.equal(first.train_x, second.train_x)
    # the same permutation for the training and the test images of an experience
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(first.test_x.flatten(1), digits.test_x.flatten(1)[:, perm])


def test_every_benchmark_names_a_registry_dataset():
    from hemcli.data import DATASETS
    assert {"split-mnist", "permuted-mnist", "split-cifar10", "split-cifar100", "split-fashion-mnist",
            "permuted-fashion-mnist", "split-digits"} <= set(BENCHMARKS)
    assert all(info.dataset in DATASETS for info in BENCHMARKS.values())


def test_the_default_scenario_is_written_into_the_recipe():
    assert config()["benchmark"]["scenario"] == "task"
    assert config(**{"benchmark.name": "permuted-digits"})["benchmark"]["scenario"] == "domain"


# ---------------------------------------------------------------- strategies


def test_strategy_params_fill_defaults_and_check_types():
    assert strategy_params("ewc", {"ewc_lambda": 5}) == {"ewc_lambda": 5, "mode": "separate", "decay_factor": 1.0}
    assert strategy_params("lwf", {"alpha": [0, 0.5]})["alpha"] == [0, 0.5]
    with pytest.raises(HemError, match="'mem_size' must be an integer, got 2.5"):
        strategy_params("replay", {"mem_size": 2.5})
    with pytest.raises(HemError, match="'alpha' must be a number or a list of numbers"):
        strategy_params("lwf", {"alpha": ["x"]})
    with pytest.raises(HemError, match="must be >= 0, got -1"):
        strategy_params("si", {"si_lambda": -1})


# ---------------------------------------------------------------- the counted loss


def test_the_loss_gets_the_class_counts_seen_so_far(digits):
    """Class scenario: after two experiences, the counts of their four classes; the others count 1."""
    from hemcli.losses import build_loss

    cfg = config(**{"benchmark.scenario": "class", "loss.name": "hem", "epochs": 1})
    import_avalanche()
    from hemcli.continual.benchmarks import avalanche_benchmark
    from hemcli.continual.hooks import CountedLoss

    dm, stream = continual.setup(cfg)
    strategy, _ = build_strategy(cfg, stream, dm, quiet=True)
    benchmark = avalanche_benchmark(stream)
    for experience in benchmark.train_stream[:2]:
        strategy.train(experience)
    seen = [cls for exp in stream.experiences[:2] for cls in exp.classes]
    expected = [int((digits.train_y == c).sum()) if c in seen else 1 for c in range(10)]
    assert find_plugin(strategy, CountedLoss).counts() == expected
    reference = build_loss("hem", num_classes=10, class_counts=expected)
    assert torch.allclose(strategy._criterion.margins, reference.margins)


# ---------------------------------------------------------------- end to end


def run(tmp_path, **sets) -> dict:
    torch.set_num_threads(1)
    tmp_path.mkdir(parents=True, exist_ok=True)
    return continual.run(config(**sets), checkpoint=tmp_path / "run.ckpt.pt", quiet=True)


@pytest.fixture(scope="module")
def task_runs(tmp_path_factory):
    """split-digits, task scenario (the default), every strategy x {ce, hem}, 5 epochs an experience."""
    out = tmp_path_factory.mktemp("runs")
    return {(strategy, loss): run(out / f"{strategy}-{loss}", epochs=5, **{"strategy.name": strategy, "loss.name": loss})
            for strategy in STRATEGIES for loss in ("ce", "hem")}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", list(STRATEGIES))
@pytest.mark.parametrize("loss", ["ce", "hem"])
def test_every_strategy_learns_split_digits(task_runs, strategy, loss):
    result = task_runs[(strategy, loss)]
    matrix = result["continual"]["accuracy_matrix"]
    assert len(matrix) == 5 and all(matrix[i][i] > 80 for i in range(5))  # each experience learned
    assert all(matrix[i][j] is None for i in range(5) for j in range(i + 1, 5))  # no head yet
    metrics = result["metrics"]
    sizes = result["continual"]["test_sizes"]
    assert metrics["final_accuracy"] == pytest.approx(sum(a * n for a, n in zip(matrix[-1], sizes)) / sum(sizes))
    assert len(result["history"]) == 5 * result["recipe"]["epochs"]


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "hem"])
def test_naive_forgets_and_replay_forgets_less_in_the_task_scenario(task_runs, loss):
    naive, replay = task_runs[("naive", loss)]["metrics"], task_runs[("replay", loss)]["metrics"]
    assert naive["average_forgetting"] > 1
    assert replay["final_accuracy"] > naive["final_accuracy"]


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "hem"])
def test_naive_forgets_and_replay_beats_it_in_the_class_scenario(tmp_path, loss):
    naive = run(tmp_path / "n", **{"benchmark.scenario": "class", "loss.name": loss})["metrics"]
    replay = run(tmp_path / "r", **{"benchmark.scenario": "class", "strategy.name": "replay", "loss.name": loss})
    assert naive["final_accuracy"] < naive["last_experience_accuracy"] - 30
    assert replay["metrics"]["final_accuracy"] > naive["final_accuracy"] + 20


def killed_after(experiences: int, monkeypatch):
    """``loop.save_checkpoint`` that raises KeyboardInterrupt (Ctrl-C) once it has written ``experiences``
    checkpoints: the run is killed right after that experience's checkpoint."""
    saved, calls = loop.save_checkpoint, []

    def save_then_die(strategy, path):
        saved(strategy, path)
        calls.append(path)
        if len(calls) == experiences:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    return lambda: monkeypatch.setattr(loop, "save_checkpoint", saved)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


@pytest.mark.slow
@pytest.mark.parametrize("strategy, params", [*((name, "{}") for name in STRATEGIES),
                                              ("replay", "{mem_size: 1}")],  # a class's share of it is empty
                         ids=[*STRATEGIES, "replay-tiny"])
def test_a_run_killed_after_an_experience_resumes_at_the_next(tmp_path, monkeypatch, capsys, strategy, params):
    """Killed after experience 2 and resumed: experiences 3-5 only are trained, and the run ends as the
    uninterrupted one does, to the last bit of every loss and accuracy (model, optimiser, strategy
    state, replay buffer and random states all carried), and at the same speed per epoch."""
    sets = {"strategy.name": strategy, "strategy.params": params, "loss.name": "hem", "epochs": 2, "batch_size": 64}
    whole = run(tmp_path / "whole", **sets)
    put_back = killed_after(2, monkeypatch)
    checkpoint = tmp_path / "killed.ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        continual.run(config(**sets), checkpoint=checkpoint, quiet=True)
    put_back()
    trained = []
    monkeypatch.setattr(loop, "test_accuracies",
                        lambda model, stream, device, real=measure.test_accuracies: trained.append(1) or
                        real(model, stream, device))
    capsys.readouterr()
    resumed = continual.run(config(**sets), checkpoint=checkpoint, resume=True, quiet=True)
    assert len(trained) == 3  # experiences 3, 4, 5 only
    assert capsys.readouterr().out == ""  # stdout is the command's, for the result path

    def without_seconds(history):
        return [{key: value for key, value in h.items() if key != "seconds"} for h in history]

    assert resumed["continual"]["accuracy_matrix"] == whole["continual"]["accuracy_matrix"]
    assert without_seconds(resumed["history"]) == without_seconds(whole["history"])
    assert resumed["continual"]["class_counts_seen"] == whole["continual"]["class_counts_seen"]
    # the epochs after the resume take as long as those of the uninterrupted run (a loose bound: one thread,
    # a shared machine)
    epochs = [h["seconds"] for h in whole["history"] if h["experience"] >= 2]
    again = [h["seconds"] for h in resumed["history"] if h["experience"] >= 2]
    assert median(again) <= 3 * median(epochs) + 0.5, (again, epochs)


def same(a, b) -> bool:
    """Equal all the way down, tensors by value, dtype and shape."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(same, a, b))
    return a == b


@pytest.mark.parametrize("strategy", ["si", "ewc", "lwf", "lfl", "replay"])
def test_a_restored_strategy_holds_what_the_saved_one_held(tmp_path, strategy):
    """Two experiences trained, saved, then put into a strategy built afresh: every part of it (the
    model and its frozen parameters, optimiser, clock, record, class counts, the plugin's state, the
    random states) is what it was, SI's included (on the CPU its state never changes a loss, so only
    this sees it)."""
    from hemcli.continual import checkpoint
    from hemcli.continual.benchmarks import avalanche_benchmark
    from hemcli.continual.hooks import CountedLoss, Record

    torch.set_num_threads(1)
    cfg = config(epochs=1, batch_size=64, **{"strategy.name": strategy, "strategy.params": "{mem_size: 50}"
                                              if strategy == "replay" else "{}"})
    import_avalanche()
    dm, stream = continual.setup(cfg)
    benchmark = avalanche_benchmark(stream)
    trained, record = build_strategy(cfg, stream, dm, quiet=True)
    for experience in benchmark.train_stream[:2]:  # as continual.run trains them
        with deprecations_hidden(False):
            trained.train(experience)
        record.seconds.append(0.5)
        record.matrix.append(measure.test_accuracies(trained.model, stream, dm.device))
    path = tmp_path / "c.ckpt.pt"
    loop.save_checkpoint(trained, path)
    hooks = {kind: find_plugin(trained, kind) for kind in (Record, CountedLoss)}
    held = checkpoint.capture(trained, hooks[Record], hooks[CountedLoss])
    fresh, _ = build_strategy(cfg, stream, dm, quiet=True)
    assert not same(checkpoint.capture(fresh, find_plugin(fresh, Record), find_plugin(fresh, CountedLoss)),
                    held)
    torch.manual_seed(123)  # the random states too are put back
    start = checkpoint.restore(path, checkpoint.read(path, cfg), fresh, find_plugin(fresh, Record),
                               find_plugin(fresh, CountedLoss), benchmark.train_stream, cfg)
    assert start == 2
    assert same(checkpoint.capture(fresh, find_plugin(fresh, Record), find_plugin(fresh, CountedLoss)),
                held)


def test_the_resumed_command_prints_only_the_result_path(tmp_path, monkeypatch, capsys):
    from hemcli.cli import main

    argv = ["continual", "--epochs", "1", "--strategy", "replay", "--out", str(tmp_path)]
    put_back = killed_after(1, monkeypatch)
    main([*argv, "--quiet"])
    assert list(tmp_path.rglob("seed0.ckpt.pt"))
    put_back()
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0  # not quiet: progress and all, on stderr
    [path] = tmp_path.rglob("seed0.json")
    out, err = capsys.readouterr()
    assert out == f"{path}\n" and "resuming at experience 2" in err
    assert json.loads(path.read_text())["continual"]["accuracy_matrix"][-1][-1] is not None


def test_avalanche_logs_go_to_stderr(capsys):
    continual.run(config(epochs=1, verbose=True, **{"benchmark.experiences": 2}), quiet=True)
    out, err = capsys.readouterr()
    assert out == "" and "Start of training phase" in err


def test_a_checkpoint_of_another_recipe_is_refused(tmp_path):
    checkpoint = tmp_path / "c.ckpt.pt"
    continual.run(config(epochs=1, **{"benchmark.experiences": 2}), checkpoint=checkpoint, quiet=True)
    with pytest.raises(HemError, match="was made with another recipe"):
        continual.run(config(epochs=2, **{"benchmark.experiences": 2}), checkpoint=checkpoint, resume=True, quiet=True)
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(HemError, match="not a hem continual checkpoint"):
        continual.run(config(epochs=1, **{"benchmark.experiences": 2}), checkpoint=checkpoint, resume=True, quiet=True)


def test_the_command_writes_one_result_with_the_matrix(tmp_path, capsys):
    from hemcli.cli import main

    code = main(["continual", "--epochs", "1", "--set", "benchmark.experiences=2", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    [path] = tmp_path.rglob("seed0.json")
    assert path.parts[-6:-2] == ("continual", "split-digits", "naive", "hem")
    result = json.loads(path.read_text())
    assert result["continual"]["scenario"] == "task" and len(result["continual"]["accuracy_matrix"]) == 2
    assert result["environment"]["avalanche"] and capsys.readouterr().out.strip() == str(path)
    assert not list(tmp_path.rglob("*.ckpt.pt"))  # a finished continual run leaves no checkpoint


def test_synaptic_intelligence_penalises_on_the_cpu(tmp_path):
    """Avalanche 0.6 snapshots the weights as views of the live parameters on the CPU, so SI's
    importances stay 0 and it trains exactly as naive. With the snapshots copied (hem's SI builder),
    a snapshot keeps the value it had, and the penalty raises the second experience's losses over
    naive's, while the first experience (no importance yet) trains identically."""
    from avalanche.training.plugins import SynapticIntelligencePlugin

    sets = {"benchmark.experiences": 2, "epochs": 2}
    naive = run(tmp_path / "naive", **sets)["history"]
    si = run(tmp_path / "si", **sets, **{"strategy.name": "si", "strategy.params": "{si_lambda: 1000}"})["history"]
    assert [h["train_loss"] for h in si[:2]] == [h["train_loss"] for h in naive[:2]]  # no penalty yet
    assert all(s["train_loss"] > n["train_loss"] + 1e-3 for s, n in zip(si[2:], naive[2:]))
    model, target = torch.nn.Linear(3, 1, bias=False), {"weight": torch.zeros(3)}
    SynapticIntelligencePlugin.extract_weights(model, target, set())
    before = model.weight.detach().flatten().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    assert torch.equal(target["weight"], before)  # the snapshot did not move with the weights
