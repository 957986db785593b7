"""Issue 14: one epoch of resnet18 on CIFAR-sized generated data (10 000 uint8 images, 32x32), batches
held on the device and augmented there (``TensorBatches``, crop + flip a batch at a time) vs a
torchvision-style DataLoader (the same crop + flip per image by torchvision transforms, 2 workers,
pinned memory on CUDA) feeding the same training step. The ratio is images/s resident / loader.

The data paths alone (the same batches, no network) are timed too: ``data_ratio``.

``python -m bench.bench_batches --amp bf16 --channels-last --arch resnet32`` times one epoch on a GPU.
"""
from __future__ import annotations

import argparse
import time

import torch

from hemcli.engine.batches import TensorBatches
from hemcli.engine.device import DeviceManager
from hemcli.losses import build_loss
from hemcli.models import build_model
from hemcli.engine.loop import train_epoch

IMAGES, BATCH, CLASSES = 10_000, 128, 10


class _Images(torch.utils.data.Dataset):
    """uint8 (3, 32, 32) tensors with a per-image torchvision transform, as a Dataset would serve them."""

    def __init__(self, x, y):
        from torchvision import transforms as T

        self.x, self.y = x, y
        self.transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()])

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.transform(self.x[i]).float().div_(255), self.y[i]


def _loader_batches(dataset, device, workers):
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                                         pin_memory=device.type == "cuda", drop_last=False,
                                         persistent_workers=False)

    class Batches:
        def __len__(self):
            return len(loader)

        def __iter__(self):
            for x, y in loader:
                yield x.to(device, non_blocking=True), y.to(device, non_blocking=True), 1.0

    return Batches()


def _epoch_seconds(arch, batches, dm) -> float:
    torch.manual_seed(0)
    model = dm.prepare_model(build_model(arch, (3, 32, 32), CLASSES))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss_fn = build_loss("ce", num_classes=CLASSES)
    if dm.device.type == "cuda":
        torch.cuda.synchronize()
    tick = time.perf_counter()
    train_epoch(model, loss_fn, batches, optimizer, dm)  # ends with .item(): synchronised
    return time.perf_counter() - tick


def _pass_seconds(batches) -> float:
    """One pass over the batches with no network: the data path's own cost."""
    tick = time.perf_counter()
    total = sum(float(x[0, 0, 0, 0]) for x, _, _ in batches)  # touch each batch (a sync on CUDA)
    del total
    return time.perf_counter() - tick


def bench_resident_vs_loader(arch: str = "resnet18", images: int = IMAGES, workers: int = 2,
                             amp: str = "none", channels_last: bool = False, loader: bool = True) -> dict:
    dm = DeviceManager.from_config({"device": "auto", "amp": amp, "channels_last": channels_last})
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, CLASSES, (images,), generator=generator)
    # one short warm-up epoch first (cuDNN picks its kernels, oneDNN builds its primitives), so the
    # side timed first does not pay for them
    warm = 1024 if dm.device.type == "cuda" else 2 * BATCH
    _epoch_seconds(arch, TensorBatches(x[:warm].to(dm.device), y[:warm].to(dm.device), BATCH, generator,
                                       "crop_flip"), dm)
    resident = _epoch_seconds(arch, TensorBatches(x.to(dm.device), y.to(dm.device), BATCH, generator, "crop_flip"),
                              dm)
    entry = {"what": f"{arch} epoch, {images} images 32x32: device-resident vs DataLoader ({workers} workers)",
             "device": str(dm.device), "amp": dm.amp, "channels_last": dm.channels_last,
             "resident_images_per_s": images / resident, "target": 1.5}
    data_only = _pass_seconds(TensorBatches(x.to(dm.device), y.to(dm.device), BATCH, generator, "crop_flip"))
    entry["resident_data_images_per_s"] = images / data_only
    if loader:
        streamed = _epoch_seconds(arch, _loader_batches(_Images(x, y), dm.device, workers), dm)
        loader_data = _pass_seconds(_loader_batches(_Images(x, y), dm.device, workers))
        entry.update(loader_images_per_s=images / streamed, ratio=streamed / resident,
                     hem_s=resident, reference_s=streamed, loader_data_images_per_s=images / loader_data,
                     data_ratio=loader_data / data_only)
    return entry


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--images", type=int, default=IMAGES)
    parser.add_argument("--amp", default="none")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--no-loader", action="store_true", help="time the device-resident epoch only")
    args = parser.parse_args()
    print(bench_resident_vs_loader(args.arch, args.images, amp=args.amp, channels_last=args.channels_last,
                                   loader=not args.no_loader), flush=True)


if __name__ == "__main__":
    _main()
