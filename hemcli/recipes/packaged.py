"""The paper's recipes, shipped inside the package as ``hemcli/recipes/<task>/<name>.yaml``.

They are package data (``pyproject.toml``), so a checkout, an editable install and a wheel find them
in the same place relative to this module; a run names one by its packaged name
(``classify/cifar10-resnet32``), never by where hem happens to be installed, so its command line and
its condition mean the same on every machine. ``--recipe`` takes that name (or, within a task, just
``cifar10-resnet32``) or the path of a recipe file of one's own.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hemcli.errors import HemError

FOLDER = Path(__file__).resolve().parent  # a plain folder in every install pip makes (wheels unpack)
SUFFIX = ".yaml"


@dataclass(frozen=True)
class Recipe:
    """A recipe to read: ``path`` on disk, and ``name`` as a command line spells it (a packaged name,
    or the path as given)."""

    path: Path
    name: str
    packaged: bool


def packaged_names(task: str | None = None) -> list[str]:
    """Every packaged recipe as ``task/name``, sorted; of one task where ``task`` is given."""
    tasks = [task] if task else sorted(p.name for p in FOLDER.iterdir() if p.is_dir() and not p.name.startswith("_"))
    return [f"{t}/{p.stem}" for t in tasks for p in sorted((FOLDER / t).glob(f"*{SUFFIX}"))]


def packaged(task: str | None, name: str) -> Recipe | None:
    """The packaged recipe ``name`` of ``task`` (``cifar10-resnet32``, ``classify/cifar10-resnet32`` or
    the same ending in .yaml, or a checkout's ``recipes/classify/cifar10-resnet32.yaml``), if any."""
    parts = Path(name.removesuffix(SUFFIX)).parts
    if parts[:1] == ("recipes",):  # how the recipes were named when they lay beside the package
        parts = parts[1:]
    if len(parts) == 1 and task:
        parts = (task, *parts)
    if len(parts) != 2 or any(part in ("", ".", "..") for part in parts):
        return None
    path = FOLDER / parts[0] / f"{parts[1]}{SUFFIX}"
    return Recipe(path, f"{parts[0]}/{parts[1]}", True) if path.is_file() else None


def locate(given: str | Path | Recipe, task: str | None = None) -> Recipe:
    """What ``--recipe given`` names (for ``hem <task>``: a bare name is one of its recipes): a file
    that exists, else a packaged recipe; a HemError naming both places otherwise (a folder or a FIFO
    is left to the reader to refuse)."""
    if isinstance(given, Recipe):
        return given
    path = Path(given)
    if path.exists() or path.is_symlink():
        inside = path.resolve().relative_to(FOLDER) if path.resolve().is_relative_to(FOLDER) else None
        if inside is not None and len(inside.parts) == 2 and inside.suffix == SUFFIX:  # a packaged one, by its path
            return Recipe(path, inside.with_suffix("").as_posix(), True)
        return Recipe(path, str(given), False)
    found = packaged(task, str(given))
    if found is not None:
        return found
    listing = f"hem recipes {task}" if task else "hem recipes"
    raise HemError(f"recipe file not found: {given} (nor a packaged recipe: {listing} lists them)")


def paper_recipe(task: str, names: list) -> Recipe | None:
    """The packaged ``<a>-<b>`` recipe of ``task`` for the recipe keys' values ``names`` (the
    dataset and arch, or continual's benchmark and strategy), where there is one."""
    if not all(isinstance(name, str) and name for name in names):
        return None
    return packaged(task, "-".join(names))


def description(recipe: Recipe) -> str:
    """The recipe's first comment line: what the paper's table calls the setting."""
    try:
        for line in recipe.path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                return line.lstrip("# ").strip()
            if line.strip():
                break
    except (OSError, UnicodeDecodeError):
        pass
    return ""
