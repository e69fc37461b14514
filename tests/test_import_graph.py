"""The import graph: no cycles between LiveFusion's modules, and the engine never imports Qt.

Read statically from the source (every `import`, also inside functions), so a lazy import that
only hides a cycle at run time still counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = {"livefusion": ROOT / "livefusion", "livefusion_ui": ROOT / "ui"}
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "livefusion_ui")


def module_name(package: str, root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def modules() -> dict[str, Path]:
    """Every module of the engine and the window, by dotted name."""
    found = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            found[module_name(package, root, path)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The known modules `path` imports (a `from X import y` of a module y counts as X.y)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target in known and target != name:
                out.add(target)
            elif target.split(".")[0] in QT:
                out.add(target.split(".")[0])
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imported(name, path, known) for name, path in found.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:
                continue
            # a package's __init__ importing its own submodules is not a cycle of concern
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# The command line is where the window is started: it imports livefusion_ui lazily, only for a
# window run, so the engine stays importable and testable without Qt.
WINDOW_STARTERS = {"livefusion.cli"}


def test_the_engine_never_imports_qt():
    offenders = {name: sorted(deps & set(QT)) for name, deps in graph().items()
                 if (name.startswith("livefusion.") or name == "livefusion")
                 and name not in WINDOW_STARTERS}
    offenders = {name: qt for name, qt in offenders.items() if qt}
    assert not offenders, offenders


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
])
def test_the_cycle_finder_itself(edges, expected):
    assert find_cycle(edges) == expected


def test_the_graph_sees_lazy_imports_inside_functions():
    edges = graph()
    assert "livefusion.cli" in edges
    assert any(dep.startswith("livefusion_ui") for dep in edges["livefusion.cli"])
