"""One device manager for every task: where to run, mixed precision, seeding, provenance.

``DeviceManager.from_config(cfg)`` picks cuda, then mps, then cpu unless the recipe names one,
and tells the training loop how to autocast and how to lay out its inputs.
"""
from __future__ import annotations

import contextlib
import os
import platform
import random
from dataclasses import dataclass

import numpy as np
import torch

from hemcli.errors import HemError

DEVICES = ("auto", "cpu", "cuda", "mps")
AMP_MODES = ("none", "bf16", "fp16")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return kind == "cpu"


def check_device_name(name: str) -> None:
    """The form of a device name: auto, cpu, mps, cuda or cuda:N (whether it exists is ``pick_device``'s)."""
    kind, sep, index = name.partition(":")
    if kind not in DEVICES or (sep and (kind != "cuda" or not index.isdigit() or not index.isascii())):
        raise HemError(f"unknown device {name!r}; valid choices: {', '.join(DEVICES)}, cuda:N")


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` gives the first of cuda, mps, cpu that exists; a named one (and its index) must exist."""
    check_device_name(requested)
    kind, _, index = requested.partition(":")
    if kind == "auto":
        return torch.device(next(k for k in ("cuda", "mps", "cpu") if _available(k)))
    if not _available(kind):
        raise HemError(f"device {requested!r} is not available here; use --device cpu or auto")
    if index and int(index) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise HemError(f"device {requested!r} is not available here: {count} CUDA device"
                       f"{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1})")
    return torch.device(requested)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; ``deterministic`` also asks torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this set before its first use to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _rank_device(device: torch.device, requested: str) -> torch.device:
    """In a multi-process (torchrun) run on CUDA without an index named, each process drives the
    GPU of its LOCAL_RANK."""
    local = os.environ.get("LOCAL_RANK")
    if device.type != "cuda" or ":" in requested or int(os.environ.get("WORLD_SIZE", "1")) < 2 or local is None:
        return device
    if int(local) >= torch.cuda.device_count():
        raise HemError(f"process {local} of this torchrun has no GPU of its own "
                       f"({torch.cuda.device_count()} here); start at most that many per node")
    torch.cuda.set_device(int(local))
    return torch.device("cuda", int(local))


@dataclass
class DeviceManager:
    device: torch.device
    amp: str = "none"
    channels_last: bool = False

    @classmethod
    def from_config(cls, cfg: dict) -> "DeviceManager":
        amp = cfg.get("amp", "none")
        if amp not in AMP_MODES:
            raise HemError(f"unknown amp mode {amp!r}; valid choices: {', '.join(AMP_MODES)}")
        device = pick_device(cfg.get("device", "auto"))
        device = _rank_device(device, cfg.get("device", "auto"))
        # Mixed precision and channels_last only pay off on CUDA; elsewhere they are ignored.
        on_cuda = device.type == "cuda"
        return cls(device, amp if on_cuda else "none", bool(cfg.get("channels_last")) and on_cuda)

    def autocast(self):
        if self.amp == "none":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_AMP_DTYPES[self.amp])

    def grad_scaler(self):
        """A scaler for fp16 (bf16 needs none); disabled otherwise so callers need no branches."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def describe(self) -> dict:
        """What the result records about where it ran."""
        info = {
            "device": str(self.device),
            "amp": self.amp,
            "channels_last": self.channels_last,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_threads": torch.get_num_threads(),
        }
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
        return info
