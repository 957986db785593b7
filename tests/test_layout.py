"""The layout stays readable (issue 26): no import cycle among hemcli's modules and no file in hemcli/
over 350 lines, as dev/layers.py measures them from the source with ast."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_no_import_cycle_and_no_long_file():
    done = subprocess.run([sys.executable, str(REPO / "dev" / "layers.py"), "--check"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout
    assert "cycles: none" in done.stdout and "files over 350 lines: none" in done.stdout


def test_the_engine_imports_nothing_of_runs_tasks_or_the_command_line():
    sys.path.insert(0, str(REPO / "dev"))
    import layers

    edges, _ = layers.graph()
    engine = {name: targets for name, targets in edges.items() if name.startswith("hemcli.engine")}
    assert engine and not [(name, t) for name, targets in engine.items() for t in targets
                           if t.startswith(("hemcli.runs", "hemcli.tasks", "hemcli.cli"))]
