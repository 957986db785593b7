"""``--compile`` (``train.compile``): the network under ``torch.compile``, or eager with one warning.

Compilation fails late: ``torch.compile`` itself returns at once, and a missing C++ compiler (CPU)
or Triton (CUDA), or an unsupported platform, shows only when the first batch goes through. So the
first forward is tried compiled and, on any error there, the network runs eager from then on; an
error of the network itself then shows again, eagerly, with its own message.
"""
from __future__ import annotations

import torch
from torch import nn


class CompiledOrEager(nn.Module):
    """Forwards through ``torch.compile(eager)`` until that fails once, then through ``eager``."""

    def __init__(self, eager: nn.Module):
        super().__init__()
        self.eager = eager
        self.compiled = torch.compile(eager)
        self.failed: str | None = None

    def forward(self, *args, **kwargs):
        if self.failed is None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as err:  # the compiler's, not the network's: that one shows again below
                from hemcli.progress import warn

                self.failed = f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0][:200]}"
                warn(f"torch.compile is not available here ({self.failed}); training eagerly")
        return self.eager(*args, **kwargs)


def compiled_or_eager(model: nn.Module) -> nn.Module:
    return CompiledOrEager(model)
