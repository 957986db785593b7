"""The module structure of hemcli/ from its imports (`python dev/layers.py`): modules, layers, imports,
cycles and long files, read with `ast` (nothing is imported or run).

A module's layer is 1 + the highest layer of the hemcli modules it imports (at the top or inside a
function: a lazy import is still a dependency), so a module never imports one on a layer above it
unless they are in a cycle; the cycles are listed. `--check` exits 1 on a cycle or a file over
MAX_LINES lines (tests/test_layout.py runs it).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hemcli"
MAX_LINES = 350


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The hemcli modules ``path`` imports (``from hemcli.x import y`` counts hemcli.x.y if that is a module)."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name.startswith("hemcli"):
                found.add(name)
    found.discard(module_name(path))
    return found


def graph() -> tuple[dict[str, set[str]], dict[str, int]]:
    files = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    edges = {name: imports_of(path, set(files)) - {name} for name, path in files.items()}
    # a package's __init__ that only re-exports its submodules is not a dependency of them
    for name in edges:
        edges[name] = {target for target in edges[name] if not name.startswith(target + ".")}
    return edges, {name: len(path.read_text().splitlines()) for name, path in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def layers(edges: dict[str, set[str]]) -> dict[str, int]:
    """Longest import chain below each module, cycles cut where they close."""
    memo: dict[str, int] = {}

    def layer(node: str, path: frozenset) -> int:
        if node in memo:
            return memo[node]
        below = [layer(t, path | {node}) for t in edges[node] if t not in path]
        memo[node] = 1 + max(below, default=0)
        return memo[node]

    return {node: layer(node, frozenset()) for node in sorted(edges)}


def main(argv: list[str]) -> int:
    edges, lines = graph()
    found, depth = cycles(edges), layers(edges)
    long = {name: count for name, count in lines.items() if count > MAX_LINES}
    print(f"{len(edges)} modules, {max(depth.values())} layers, {sum(map(len, edges.values()))} imports between them")
    for level in range(max(depth.values()), 0, -1):
        print(f"  layer {level}: {', '.join(name for name in sorted(depth) if depth[name] == level)}")
    print(f"cycles: {found or 'none'}")
    print(f"files over {MAX_LINES} lines: {long or 'none'}")
    return 1 if "--check" in argv and (found or long) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
