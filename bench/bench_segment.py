"""Issue 17: HEM vs CE loss time and peak memory at CamVid's full size (batch 12, 12 classes,
360x480; ``bench_losses``), and one ``hem segment`` epoch against a bare smp training loop on the same
images (target <= 1.05x).

The epoch: FPN-ResNet18, CE, SGD, batch 8, no augmentation on either side, on the generated shapes
(offline, 64x64); the first epoch of each side warms up, the median of the others counts; the two
sides alternate. ``hem segment``'s epoch is its whole training loop (device-resident batches, padding
to the stride, pixel accuracy without ignored pixels); validation is off, as the bare loop has none.

    python -m bench.bench_segment
"""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

CAMVID_LOGITS = (12, 12, 360, 480)


def bare_smp_loop(images, masks, epochs: int, batch_size: int, lr: float, seed: int, ignore_index: int) -> list[float]:
    """The reference: smp's FPN and the shortest honest loop over tensors, timed per epoch."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(seed)
    model = smp.FPN(encoder_name="resnet18", encoder_weights=None, classes=4)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for idx in torch.randperm(len(masks), generator=gen).split(batch_size):
            loss = F.cross_entropy(model(images[idx].float() / 255), masks[idx], ignore_index=ignore_index)
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def bench_segment_epoch(images: int = 128, epochs: int = 3, rounds: int = 4) -> dict:
    from hemcli.data.segmentation import load_shapes
    from hemcli.recipes import resolve
    from hemcli.tasks import segment

    sets = ["loss.name=ce", "optim.name=sgd", "optim.lr=0.01", f"dataset.limit={images}", f"epochs={epochs}",
            "batch_size=8", "validate=false", "augment.flip=false", "schedule.warmup_epochs=0", "device=cpu"]
    cfg = resolve(segment.schema(), "segment", sets=sets)
    data = load_shapes(None, "train").limited(images)
    hem, bare = [], []

    def run_hem():
        hem.extend(h["seconds"] for h in segment.run(cfg, quiet=True)["history"][1:])

    def run_bare():
        bare.extend(bare_smp_loop(data.images, data.masks, epochs, 8, 0.01, 0, data.ignore_index)[1:])

    for i in range(rounds):
        for side in ((run_hem, run_bare) if i % 2 else (run_bare, run_hem)):
            side()
    hem_s, bare_s = statistics.median(hem), statistics.median(bare)
    return {"what": f"segment epoch (shapes x{images}, fpn-resnet18, ce) / bare smp loop", "hem_s": hem_s,
            "reference_s": bare_s, "ratio": hem_s / bare_s, "target": 1.05}


def bench_segment_loss(repeats: int = 10) -> list[dict]:
    from bench.bench_losses import bench_hem

    return bench_hem(shapes=(CAMVID_LOGITS,), repeats=repeats)


if __name__ == "__main__":
    for entry in bench_segment_loss():
        print(f"{entry['what']}: time x{entry['time_ratio']:.2f}, memory x{entry['memory_ratio']:.2f} "
              f"({entry['hem_ms']:.0f} vs {entry['ce_ms']:.0f} ms, {entry['hem_bytes'] / 2**20:.0f} vs "
              f"{entry['ce_bytes'] / 2**20:.0f} MiB)")
    entry = bench_segment_epoch()
    print(f"{entry['what']}: x{entry['ratio']:.2f} ({entry['hem_s']:.2f}s vs {entry['reference_s']:.2f}s)")
