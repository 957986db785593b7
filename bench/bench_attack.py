"""AutoAttack speed: hem's ``run_autoattack`` (stage by stage, its state file written after each
batch, as ``hem`` runs it) against torchattacks' own ``AutoAttack(..., version='standard',
n_classes=10, seed=0)`` called directly, then one pass for the logits, on the same model and images;
the two sides alternate, and the ratio is the median of the per-round ratios.

Setting: hem's LeNet trained for 60 Adam steps (batch 128, lr 1e-3) on scikit-learn's bundled digits
scaled up to 28x28, about 85% right on the 200 attacked digits (held out from training); l-inf,
eps 0.3 (the paper's MNIST budget). At that budget APGD-CE breaks every image, as it does for an
undefended MNIST LeNet, so this measures the first stage and the chaining around it; the later stages
run torchattacks' own code on both sides. Both sides attack the 200 images as one batch with seed 0,
so they do the same work; the bench checks that their adversarial logits agree.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

EPS = 0.3
IMAGES = 200


def lenet_and_digits(images: int = IMAGES, steps: int = 60) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The trained LeNet (eval mode) and the first ``images`` digits (N, 1, 28, 28) with labels."""
    from sklearn.datasets import load_digits

    from hemcli.models import build_model

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = build_model("lenet", (1, 28, 28), 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(images, len(y), (128,), generator=gen)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    opt.zero_grad()
    return model.eval(), x[:images], y[:images]


def _hem(model, x, y) -> tuple[float, torch.Tensor]:
    from hemcli.evaluation.attack import run_autoattack

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        found = run_autoattack(model, x, y, "linf", EPS, 10, seed=0, state_path=Path(folder) / "attack.pt",
                               settings={"bench": True})
        return time.perf_counter() - start, found["logits"]


def _torchattacks(model, x, y) -> tuple[float, torch.Tensor]:
    import torchattacks

    start = time.perf_counter()
    adv = torchattacks.AutoAttack(model, norm="Linf", eps=EPS, version="standard", n_classes=10, seed=0)(x, y)
    with torch.no_grad():  # the logits are what the DAR needs, and what hem's side returns
        logits = model(adv)
    return time.perf_counter() - start, logits


def bench_attack(rounds: int = 21) -> dict:
    """Median over rounds of (torchattacks' seconds / hem's seconds) in the same round, i.e. hem's
    images/s as a share of torchattacks'; pairing the sides per round cancels the shared machine's
    drift, which swings single runs here by +-20%."""
    model, x, y = lenet_and_digits()
    _hem(model, x, y), _torchattacks(model, x, y)  # warm up both
    hem, ref = [], []
    for i in range(rounds):
        for side in ((_hem, _torchattacks) if i % 2 else (_torchattacks, _hem)):
            (hem if side is _hem else ref).append(side(model, x, y))
    if not torch.equal(hem[0][1].argmax(1), ref[0][1].argmax(1)):
        raise AssertionError("hem's AutoAttack and torchattacks' disagree on the same images and seed")
    hem_s, ref_s = statistics.median(s for s, _ in hem), statistics.median(s for s, _ in ref)
    ratio = statistics.median(r / h for (h, _), (r, _) in zip(hem, ref))
    return {"what": f"AutoAttack l-inf, LeNet, {IMAGES} 28x28 images: hem images/s / torchattacks images/s "
                    "(higher is better)", "hem_s": hem_s, "reference_s": ref_s, "ratio": ratio, "target": 0.95,
            "robust_accuracy": float((hem[0][1].argmax(1) == y).float().mean())}

if __name__ == "__main__":
    print(bench_attack())
