"""AutoAttack stage by stage (hemcli.evaluation.attack) against torchattacks' own AutoAttack.

A small MLP trained for 30 Adam steps on scikit-learn's bundled 8x8 digits, attacked on 40 held-out
images (36 classified right): APGD-CE and APGD-T break some, the rest survive every stage, so all
four stages run. Square's 5000 queries on the survivors would take ~10 s a run, so the tests lower
``SQUARE_QUERIES`` (and torchattacks' Square's ``n_queries`` in the reference) to 100: the chaining,
seeding and resuming under test do not depend on the query count. Torch runs on one thread here
(the machine is shared; more threads only slow these tiny matmuls down).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hemcli.errors import HemError
from hemcli.evaluation import attack as aa
from hemcli.evaluation.attack import (attack_batch, attack_with_logits, autoattack_stages, clear_state,
                                    run_autoattack, save_state, settings_key)

torchattacks = pytest.importorskip("torchattacks")
EPS = {"linf": 0.12, "l2": 0.5}
QUERIES = 100


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def few_queries(monkeypatch):
    monkeypatch.setattr(aa, "SQUARE_QUERIES", QUERIES)


def digits_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The MLP and 40 held-out digits (N, 1, 8, 8) in [0, 1] with their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss = F.cross_entropy(model(x[:400]), y[:400])
        opt.zero_grad()
        loss.backward()
        opt.step()
    opt.zero_grad()
    return model.eval(), x[1000:1040].clone(), y[1000:1040].clone()


@pytest.fixture(scope="module")
def digits():
    return digits_model()


def reference(model, x, y, norm, seed=0):
    """torchattacks' AutoAttack 'standard' (Square at QUERIES) and its unbroken count after each stage."""
    attack = torchattacks.AutoAttack(model, norm={"linf": "Linf", "l2": "L2"}[norm], eps=EPS[norm],
                                     version="standard", n_classes=10, seed=seed)
    multi = attack._autoattack
    multi.attacks[3].n_queries = QUERIES
    multi._accumulate_multi_atk_records, multi._multi_atk_records = True, [0.0] * 5  # its per-stage counts
    adv = attack(x, y)
    return adv, [int(r) for r in multi._multi_atk_records[1:]]  # stages it skipped keep their 0


SHARED = ("model", "attack", "device", "verbose", "seed", "supported_mode", "attack_mode", "targeted",
          "normalization_used")


def settings_of(stage) -> dict:
    """An attack's own settings (steps, restarts, targets, ...), without the model and bookkeeping."""
    return {k: v for k, v in vars(stage).items() if not k.startswith("_") and k not in SHARED}


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_torchattacks_strength_is_torchattacks_autoattack(digits, norm, monkeypatch):
    monkeypatch.setattr(aa, "SQUARE_QUERIES", 5000)
    ours = autoattack_stages(digits[0], norm, 0.1, 10, "torchattacks", seed=3)
    theirs = torchattacks.AutoAttack(digits[0], norm={"linf": "Linf", "l2": "L2"}[norm], eps=0.1,
                                     version="standard", n_classes=10, seed=3)._autoattack.attacks
    assert [name for name, _ in ours] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    for (_, stage), other in zip(ours, theirs):
        assert type(stage) is type(other)
        assert settings_of(stage) == settings_of(other) and stage.seed == other.seed == 3
    apgd, apgdt, fab, square = (stage for _, stage in ours)
    assert (apgd.steps, apgdt.steps, fab.steps, square.n_queries) == (10, 10, 10, 5000)
    assert (apgdt.n_target_classes, fab.n_target_classes, square.rescale_schedule) == (9, 9, True)


@pytest.mark.parametrize("n_classes, targets", [(10, 9), (100, 9), (5, 4)])
def test_official_strength_budget(digits, n_classes, targets, monkeypatch):
    """Croce & Hein's 'standard': 100 iterations, 9 target classes (all others when fewer), Square
    5000 queries with p_init 0.8 and its schedule not rescaled; torchattacks' targets all C-1."""
    monkeypatch.setattr(aa, "SQUARE_QUERIES", 5000)
    apgd, apgdt, fab, square = (s for _, s in autoattack_stages(digits[0], "l2", 0.5, n_classes, "official"))
    assert (apgd.steps, apgd.n_restarts, apgd.loss) == (100, 1, "ce")
    assert (apgdt.steps, apgdt.n_restarts, apgdt.n_target_classes) == (100, 1, targets)
    assert (fab.steps, fab.n_restarts, fab.n_target_classes, fab.multi_targeted) == (100, 1, targets, True)
    assert (square.n_queries, square.p_init, square.rescale_schedule, square.norm) == (5000, 0.8, False, "L2")
    _, apgdt, fab, _ = (s for _, s in autoattack_stages(digits[0], "l2", 0.5, n_classes, "torchattacks"))
    assert apgdt.n_target_classes == fab.n_target_classes == n_classes - 1


def test_unknown_names_and_bad_input(digits):
    model, x, y = digits
    with pytest.raises(HemError, match=r"unknown attack norm 'l1'; valid choices: l2, linf"):
        autoattack_stages(model, "l1", 0.1, 10)
    with pytest.raises(HemError, match=r"unknown attack strength 'strong'; valid choices: official, torchattacks"):
        autoattack_stages(model, "linf", 0.1, 10, "strong")
    with pytest.raises(HemError, match="at least 4 classes"):
        autoattack_stages(model, "linf", 0.1, 3)
    for kwargs, problem in [({"eps": 0.0}, "eps"), ({"batch_size": 0}, "batch size")]:
        with pytest.raises(HemError, match=problem):
            run_autoattack(model, x, y, "linf", **{"eps": 0.1, "n_classes": 10, **kwargs})
    with pytest.raises(HemError, match=r"pixels in \[0, 1\]"):
        run_autoattack(model, x * 16, y, "linf", 0.1, 10)
    with pytest.raises(HemError, match="images"):
        run_autoattack(model, x[:, 0], y, "linf", 0.1, 10)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_attack_batch_equals_torchattacks_autoattack(digits, norm, capsys):
    model, x, y = digits
    counts = []
    adv = attack_batch(autoattack_stages(model, norm, EPS[norm], 10), model, x, y, seed=0, counts=counts)
    ref, records = reference(model, x, y, norm)
    assert torch.equal(adv, ref)  # same stages on the same images with the same seeds: bit for bit
    clean = model(x).argmax(1) == y
    assert counts == [int(clean.sum())] + records
    assert 0 < counts[-1] < counts[1] < counts[0] < len(y)  # some break, some survive, some were wrong
    assert capsys.readouterr().out == ""

    with torch.no_grad():
        robust = model(adv).argmax(1) == y
    assert int(robust.sum()) == counts[-1]
    assert torch.equal(adv[~clean], x[~clean])  # wrong already: left alone
    assert torch.equal(adv[robust], x[robust])  # never broken: the clean image, as MultiAttack keeps it
    delta = (adv - x).flatten(1)
    if norm == "linf":
        assert delta.abs().max() <= EPS[norm] + 1e-6
    else:
        assert delta.norm(dim=1).max() <= EPS[norm] + 1e-5
    assert adv.min() >= 0 and adv.max() <= 1


class Pixel(nn.Module):
    """Two classes decided by two pixels: logits (x[0, 0, 0], x[0, 0, 1])."""

    def forward(self, x):
        return x[:, 0, 0, :2]


class Stub:
    """A stand-in stage: pushes pixel 1 of every image it is given to ``value`` for those whose
    marker (pixel 2) is in ``breaks`` (and by 0.01 for the others), and logs the markers it saw."""

    def __init__(self, breaks, seen):
        self.breaks, self.seen, self.seed = breaks, seen, None

    def __call__(self, x, y):
        self.seen.append(x[:, 0, 0, 2].tolist())
        out = x.clone()
        hit = torch.tensor([m in self.breaks for m in x[:, 0, 0, 2].tolist()])
        out[:, 0, 0, 1] += 0.01
        out[hit, 0, 0, 1] = 1.0
        return out


def test_attack_batch_chains_stages_on_unbroken_images():
    x = torch.zeros(5, 1, 1, 3)
    x[:, 0, 0, 0] = 0.5  # class 0 wins ...
    x[3, 0, 0, 1] = 0.9  # ... except image 3, misclassified clean
    x[:, 0, 0, 2] = torch.arange(5.0)  # markers 0..4
    y = torch.zeros(5, dtype=torch.int64)
    seen: list = []
    stages = [("a", Stub({1}, seen)), ("b", Stub({0, 1, 3}, seen)), ("c", Stub(set(), seen))]
    counts: list[int] = []
    adv = attack_batch(stages, Pixel(), x, y, seed=7, counts=counts)
    assert seen == [[0.0, 1.0, 2.0, 4.0], [0.0, 2.0, 4.0], [2.0, 4.0]]
    assert counts == [4, 3, 2, 2]
    assert [s.seed for _, s in stages] == [7, 7, 7]
    expected = x.clone()
    expected[[0, 1], 0, 0, 1] = 1.0  # broken by b and a: their outputs; the 0.01 nudges of failures dropped
    assert torch.equal(adv, expected)


def test_attack_batch_restores_model_and_rng(digits):
    model, x, y = digits
    model.zero_grad()
    model.train()
    try:
        torch.manual_seed(5)
        expected = torch.rand(3)
        torch.manual_seed(5)
        first = attack_batch(autoattack_stages(model, "linf", EPS["linf"], 10), model, x[:8], y[:8], seed=2)
        assert torch.equal(torch.rand(3), expected)  # the stages re-seed torch; the caller's stream goes on
        assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())
        torch.manual_seed(99)
        torch.rand(100)
        again = attack_batch(autoattack_stages(model, "linf", EPS["linf"], 10), model, x[:8], y[:8], seed=2)
        assert torch.equal(first, again)
    finally:
        model.eval()


FRESH = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_attack import digits_model
from hemcli.evaluation import attack as aa
torch.set_num_threads(1)
aa.SQUARE_QUERIES = {queries}
model, x, y = digits_model()
adv = aa.attack_batch(aa.autoattack_stages(model, "l2", {eps}, 10), model, x[10:30], y[10:30], seed=4)
torch.save(adv, {out!r})
"""


@pytest.mark.slow
def test_a_batch_is_the_same_in_a_fresh_process(digits, tmp_path):
    """A resumed batch runs in another process: it must reproduce the first run's images exactly."""
    model, x, y = digits
    torch.rand(1000)  # this process's RNG is somewhere else than a fresh one's
    here = attack_batch(autoattack_stages(model, "l2", EPS["l2"], 10), model, x[10:30], y[10:30], seed=4)
    script = FRESH.format(tests=str(Path(__file__).resolve().parent), queries=QUERIES,
                          eps=EPS["l2"], out=str(tmp_path / "adv.pt"))
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=120)
    assert torch.equal(here, torch.load(tmp_path / "adv.pt", weights_only=True))


def test_run_autoattack_batches_with_seed_plus_index(digits, capsys):
    model, x, y = digits
    found = run_autoattack(model, x[:25], y[:25], "linf", EPS["linf"], 10, seed=3, batch_size=10)
    logits = found["logits"]
    assert logits.shape == (25, 10) and logits.dtype == torch.float32 and logits.device.type == "cpu"
    stages = autoattack_stages(model, "linf", EPS["linf"], 10)
    last, last_logits, _ = attack_with_logits(stages, model, x[20:25], y[20:25], seed=3 + 2)
    assert torch.equal(logits[20:], last_logits)
    with torch.no_grad():  # the logits come from the passes that judged each image: same up to rounding
        torch.testing.assert_close(logits[20:], model(last), rtol=1e-5, atol=1e-5)
    assert found["resumed_batches"] == 0 and found["seconds"] > 0
    robust = found["robust"]
    assert list(robust) == ["clean", "apgd-ce", "apgd-t", "fab-t", "square"]
    assert robust["clean"] == int((model(x[:25]).argmax(1) == y[:25]).sum())
    assert robust["square"] == int((logits.argmax(1) == y[:25]).sum())
    assert capsys.readouterr().out == ""


class Stop(Exception):
    pass


def interrupt_after(batches: int):
    """A progress callback that raises KeyboardInterrupt once ``batches`` batches of 10 are done."""
    def progress(done, total):
        if done >= 10 * batches:
            raise KeyboardInterrupt
    return progress


def test_interrupted_attack_resumes_where_it_stopped(digits, tmp_path):
    model, x, y = digits
    state = tmp_path / "attack.pt"
    whole = run_autoattack(model, x, y, "linf", EPS["linf"], 10, batch_size=10)
    with pytest.raises(KeyboardInterrupt):
        run_autoattack(model, x, y, "linf", EPS["linf"], 10, batch_size=10, state_path=state,
                       settings={"run": "a"}, progress=interrupt_after(2))
    calls = []
    resumed = run_autoattack(model, x, y, "linf", EPS["linf"], 10, batch_size=10, state_path=state,
                             settings={"run": "a"}, progress=lambda done, total: calls.append((done, total)))
    assert resumed["resumed_batches"] == 2
    assert torch.equal(resumed["logits"], whole["logits"])
    assert resumed["robust"] == whole["robust"]
    assert calls == [(20, 40), (30, 40), (40, 40)]
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left by the atomic writes
    clear_state(state)
    assert not state.exists()
    clear_state(state)  # gone already: fine


@pytest.mark.parametrize("change", [{"settings": {"run": "b"}}, {"eps": 0.07}, {"seed": 1}])
def test_state_with_other_settings_is_not_reused(digits, tmp_path, capsys, change):
    model, x, y = digits
    state = tmp_path / "attack.pt"
    first = {"norm": "linf", "eps": EPS["linf"], "n_classes": 10, "batch_size": 10, "state_path": state,
             "settings": {"run": "a"}}
    with pytest.raises(KeyboardInterrupt):
        run_autoattack(model, x[:20], y[:20], **first, progress=interrupt_after(1))
    second = {**first, **change}
    with pytest.raises(KeyboardInterrupt):  # a reused state would call progress(10, 20) before attacking
        run_autoattack(model, x[:20], y[:20], **second, progress=interrupt_after(1))
    assert "other settings" in capsys.readouterr().err
    saved = torch.load(state, weights_only=True)
    assert saved["batches"] == 1 and saved["settings"] == settings_key(
        "linf", second["eps"], 10, "torchattacks", second.get("seed", 0), 10, y[:20], second["settings"])


def test_unreadable_or_foreign_state_starts_over(digits, tmp_path, capsys):
    model, x, y = digits
    state = tmp_path / "attack.pt"
    state.write_bytes(b"not a torch file")
    found = run_autoattack(model, x[:10], y[:10], "linf", EPS["linf"], 10, batch_size=10, state_path=state)
    assert found["resumed_batches"] == 0 and "cannot read the attack state" in capsys.readouterr().err
    key = settings_key("linf", EPS["linf"], 10, "torchattacks", 0, 10, y[:10], None)
    save_state(state, key, {"batches": 1, "logits": torch.zeros(3, 10), "counts": torch.zeros(1, 5, dtype=torch.int64),
                            "seconds": 1.0})  # right settings, wrong row count
    found = run_autoattack(model, x[:10], y[:10], "linf", EPS["linf"], 10, batch_size=10, state_path=state)
    assert found["resumed_batches"] == 0 and "incomplete" in capsys.readouterr().err


def test_no_images_gives_no_logits(digits):
    model, x, y = digits
    found = run_autoattack(model, x[:0], y[:0], "l2", 0.5, 10)
    assert found["logits"].shape == (0, 10) and found["robust"]["clean"] == 0
