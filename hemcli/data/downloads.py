"""torchvision's downloads of the sets it can fetch (MNIST, Fashion-MNIST, KMNIST, CIFAR, SVHN), made
in a temporary folder and moved under the data root only once complete, so that an offline or failed
download leaves the data root as it was.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hemcli.errors import HemError


def torchvision_download(torchvision_cls: str, root: Path, calls: list[dict], entries: list[str]) -> None:
    """Let torchvision fetch the files where the network allows; say so in one line if not.

    torchvision's ``torchvision_cls(tmp, download=True, **call)`` runs for each of ``calls`` in a
    temporary folder, and only then are the files in its ``entries`` (paths relative to that folder:
    files, or folders whose files are taken) moved under ``root`` (never replacing a file there). So
    a failed download (offline) leaves ``root`` exactly as it was.
    """
    import torchvision.datasets as tvd

    with tempfile.TemporaryDirectory(prefix="hem-download-") as tmp:
        try:
            for call in calls:
                getattr(tvd, torchvision_cls)(tmp, download=True, **call)
        except Exception as err:  # any network or checksum failure: the files are simply not there
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            reason = lines[-1][:160] if lines else type(err).__name__  # torchvision ends with the cause
            raise HemError(f"could not download {torchvision_cls} into {root} ({reason}); put the files at "
                           f"{' and '.join(str(root / entry) for entry in entries)} or pass --data-root") from None
        try:
            for entry in entries:
                move_new(Path(tmp) / entry, root / entry)
        except OSError as err:
            raise HemError(f"cannot write the downloaded {torchvision_cls} files to {root}: "
                           f"{err.strerror or err}") from None


def move_new(source: Path, target: Path) -> None:
    """Move a file, or a folder's files, to ``target`` where nothing is yet."""
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for file in source.iterdir():
            move_new(file, target / file.name)
    elif not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), target)
