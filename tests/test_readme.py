"""Every command of README.md works (issue 28): the `console` blocks are read from the file and each
`$ hem ...` line runs, in the order the README gives them, in one empty folder — so a later line sees
the results of the earlier ones, as a reader who types them does. A `make` or `pip` line is not run
(it would build a venv or install from a registry) but must name what the Makefile and pyproject.toml
offer. Any other program in a block fails the test: add it here first, with a way to check it.

A `hem` line that names `--data-root` needs data this test does not have (and a paper recipe trains
for hours): it runs with `--dry-run` appended, which resolves and checks the whole recipe and prints
the result path. A line whose comment says `-> PATH` must print exactly PATH, the path the README
promises for it.
"""
from __future__ import annotations

import re
import shlex
import sys

import pytest

from conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

pytestmark = pytest.mark.slow

README = REPO / "README.md"


def readme_commands(text: str) -> list[tuple[str, str]]:
    """(command, comment) for each `$ ` line of the README's console blocks, in order; a line ending
    in a backslash continues on the next."""
    commands = []
    for block in re.findall(r"^```console\n(.*?)^```", text, re.M | re.S):
        pending = ""
        for line in block.splitlines():
            if pending:
                line = pending + " " + line.strip().lstrip(">").strip()
            elif line.startswith("$ "):
                line = line[2:]
            else:
                continue  # output shown in the block, not a command
            if line.endswith("\\"):
                pending = line[:-1].rstrip()
                continue
            pending = ""
            command, _, comment = line.partition(" # ")
            commands.append((command.strip(), comment.strip()))
        assert not pending, f"a README command ends in a backslash: {pending}"
    return commands


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", text, re.M))


def installable(package: str) -> bool:
    """Whether `pip install PACKAGE` names this project (by name, or the checkout `.`) with extras that
    pyproject.toml offers."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    name, _, extras = package.partition("[")
    offered = set(project.get("optional-dependencies", {}))
    return name in (project["name"], ".") and set(filter(None, extras.rstrip("]").split(","))) <= offered


def test_the_readme_has_commands_of_every_task():
    programs = {command.split()[0] for command, _ in readme_commands(README.read_text())}
    hem = {command.split()[1] for command, _ in readme_commands(README.read_text()) if command.startswith("hem ")}
    assert programs <= {"hem", "make", "pip"}, programs - {"hem", "make", "pip"}
    assert {"classify", "longtail", "continual", "segment", "evaluate", "sweep", "report"} <= hem


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub and MkDocs give the headings of a page: lower case, punctuation dropped,
    spaces as hyphens (`Several GPUs (DistributedDataParallel)` -> `several-gpus-distributeddataparallel`)."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_readme_links_name_pages_and_headings_that_exist():
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert len(local) >= 10
    for link in local:
        path, _, anchor = link.partition("#")
        target = REPO / path
        assert target.is_file(), f"README links to {link}: no such file"
        assert not anchor or anchor in heading_anchors(target.read_text()), f"README links to {link}: no such heading"


def test_readme_make_and_pip_lines_name_what_the_project_offers():
    targets = make_targets()
    checked = 0
    for command, _ in readme_commands(README.read_text()):
        words = shlex.split(command)
        if words[0] == "make":
            assert set(words[1:]) <= targets, f"{command}: the Makefile has no target {set(words[1:]) - targets}"
            checked += 1
        elif words[0] == "pip":
            assert words[1] == "install", command
            packages = [w for w in words[2:] if not w.startswith("-")]
            assert packages and all(map(installable, packages)), f"{command}: not this project or its extras"
            checked += 1
    assert checked >= 3  # make demo, make test, pip install hemcli


def test_every_hem_line_of_the_readme_runs(tmp_path, monkeypatch, capsys):
    from hemcli.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEM_CACHE", str(tmp_path / "cache"))  # segmentation counts, corruptions
    monkeypatch.delenv("HEM_DATA", raising=False)
    lines = [(c, comment) for c, comment in readme_commands(README.read_text()) if c.startswith("hem ")]
    assert len(lines) >= 15
    for command, comment in lines:
        args = shlex.split(command)[1:]
        if "--data-root" in args and "--dry-run" not in args:
            args.append("--dry-run")
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 0, f"README line `{command}` exited {code}: {err.strip()[-500:]}"
        promised = re.search(r"-> (\S+)", comment)
        if promised:
            assert out.strip().splitlines()[-1] == promised.group(1), f"README line `{command}`: {out}"
