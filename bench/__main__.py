"""`make bench`: speed and memory as ratios to a reference measured in the same run.

Targets (issue 2): HEM forward+backward <= 1.25x time and <= 1.5x peak memory of F.cross_entropy;
`hem classify` epoch <= 1.05x a bare PyTorch loop; `hem --help` <= 1.5x `python -c "import typer"`.
Issue 12: `hem sweep` of 8 short digits runs, --jobs 2 at least 1.6x as fast as --jobs 1.
Issue 13: AutoAttack: run_autoattack images/s >= 0.95x torchattacks' AutoAttack on the same LeNet and
images; corruption-set generation in images/s (greyscale MNIST-C list and RGB imagecorruptions; no target).
Issue 14: one resnet18 epoch on 10 000 CIFAR-sized images, device-resident batches >= 1.5x the images/s
of a torchvision DataLoader with 2 workers (and the data paths alone, no network).
Issue 16: `hem continual` (split-digits, naive, 5 experiences) <= 1.05x a bare Avalanche script.
Issue 25: a continual run's epochs after `--resume` <= 1.5x those of the same run uninterrupted (naive, ewc).
Issue 17: HEM vs CE at CamVid's size (12x12x360x480; the loss targets above); one `hem segment` epoch
<= 1.05x a bare smp training loop on the same images.
"""
from __future__ import annotations

import torch
from tabulate import tabulate

from bench.bench_attack import bench_attack
from bench.bench_batches import bench_resident_vs_loader
from bench.bench_cli import bench_epoch, bench_startup
from bench.bench_continual import bench_continual, bench_continual_resume
from bench.bench_corruptions import bench_corruptions
from bench.bench_losses import bench_hem
from bench.bench_segment import bench_segment_epoch, bench_segment_loss
from bench.bench_sweep import bench_sweep


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'cuda ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}", flush=True)
    rows = []
    for entry in [*bench_hem(), *bench_segment_loss()]:
        rows.append([entry["what"], entry["time_ratio"], 1.25, entry["memory_ratio"], 1.5])
        print(f"  {entry['what']}: time x{entry['time_ratio']:.2f}, memory x{entry['memory_ratio']:.2f}", flush=True)
    for entry in (bench_epoch(), bench_startup(), bench_sweep(), bench_attack(), bench_continual(),
                  bench_continual_resume("naive"), bench_continual_resume("ewc"),
                  bench_segment_epoch()):
        rows.append([entry["what"], entry["ratio"], entry["target"], None, None])
        print(f"  {entry['what']}: x{entry['ratio']:.2f} ({entry['hem_s']:.4f}s vs {entry['reference_s']:.4f}s)", flush=True)
    entry = bench_resident_vs_loader()
    rows.append([entry["what"], entry["ratio"], entry["target"], None, None])
    print(f"  {entry['what']}: x{entry['ratio']:.2f} ({entry['resident_images_per_s']:.1f} vs "
          f"{entry['loader_images_per_s']:.1f} images/s); data path alone x{entry['data_ratio']:.1f} "
          f"({entry['resident_data_images_per_s']:.0f} vs {entry['loader_data_images_per_s']:.0f} images/s)",
          flush=True)
    for entry in bench_corruptions():
        print(f"  {entry['what']}: {entry['images_per_s']:.0f} images/s ({entry['seconds']:.1f}s)", flush=True)
    print(tabulate(rows, headers=["measurement", "time ratio", "target", "memory ratio", "target"],
                   tablefmt="github", floatfmt=".2f", missingval="-"))


if __name__ == "__main__":
    main()
