"""How the code is laid out: no import cycle among the modules of components/, and no test module importing from
another test module (shared helpers live in conftest.py files and tests/harness).

Both read the source with `ast`, imports inside functions included: a cycle hidden in a function-level import is
still a cycle (the order in which a program happens to import decides whether it breaks)."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path, known: Mapping[str, Path], root: Path = ROOT) -> set[str]:
    """The modules of `known` that the file at `path` imports, anywhere in it (`from . import x` counts as the
    module x when x is a module, else as the package)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            for a in node.names:
                if f"{target}.{a.name}" in known:
                    found.add(f"{target}.{a.name}")
                elif target in known:
                    found.add(target)
    found.discard(name)
    return found


def import_graph(package: Path, root: Path = ROOT) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in package.rglob("*.py")}
    return {name: imported(path, files, root) for name, path in files.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each as the path that closes it (a -> b -> ... -> a), one per strongly connected set
    of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm; the package is a few dozen modules deep at most
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.append(w)
                if w == v:
                    break
            if len(members) > 1 or v in graph[v]:
                found.append(_closing_path(graph, sorted(members)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _closing_path(graph: Mapping[str, set[str]], members: list[str]) -> list[str]:
    """A shortest cycle through the first member, inside the set (breadth first)."""
    start, inside = members[0], set(members)
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v] & inside):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                todo.append(w)
    return members


def test_components_has_no_import_cycle():
    found = cycles(import_graph(ROOT / "components"))
    assert found == [], "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("from .c import X\n")
    (pkg / "c.py").write_text("def f():\n    from pkg import a\n    return a\nX = 1\n")
    (pkg / "d.py").write_text("from . import a\n")
    assert cycles(import_graph(pkg, tmp_path)) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    (pkg / "c.py").write_text("X = 1\n")
    assert cycles(import_graph(pkg, tmp_path)) == []


def imports_of_test_modules(root: Path, tests: Path) -> list[str]:
    """`file: module` for each import, in a test module under `tests`, of another test module."""
    files = {module_name(p, root): p for p in tests.rglob("*.py")}
    bad = []
    for path in sorted(tests.rglob("test_*.py")):
        for target in sorted(imported(path, files, root)):
            if files[target].name.startswith("test_"):
                bad.append(f"{path.relative_to(root)}: {target}")
    return bad


def test_no_test_module_imports_from_another():
    assert imports_of_test_modules(ROOT, ROOT / "tests") == []


def test_an_import_from_another_test_module_is_found(tmp_path):
    tests = tmp_path / "tests"
    (tests / "e2e").mkdir(parents=True)
    (tests / "conftest.py").write_text("def helper(): ...\n")
    (tests / "test_a.py").write_text("from tests.conftest import helper\n\ndef shared(): ...\n")
    (tests / "e2e" / "test_b.py").write_text("def test_x():\n    from tests.test_a import shared\n")
    assert imports_of_test_modules(tmp_path, tests) == ["tests/e2e/test_b.py: tests.test_a"]
