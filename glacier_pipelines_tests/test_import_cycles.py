"""No import cycles through the lower layers (issue #19): a cycle ties modules together so neither can be read,
tested or moved alone, and a function-level import that dodges one at import time is still one.

The graph counts every import of a ``glacier_pipelines`` module, at any level, except those under
``if TYPE_CHECKING:`` (annotations only: they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import glacier_pipelines

PACKAGE_ROOT = Path(glacier_pipelines.__file__).parent
# The packages whose modules may take part in no cycle.
CHECKED = (
    "glacier_pipelines.core",
    "glacier_pipelines.catalog",
    "glacier_pipelines.flows",
    "glacier_pipelines.resources",
)


def module_files() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its own name, not ``...__init__``)."""
    modules = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (their ``else:`` runs, so it stays)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module name a ``from ... import`` names (relative imports resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package's modules it imports at run time."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(name, path, node)
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:  # ``from package import module``
                        graph[name].add(f"{target}.{alias.name}")
                    elif target in modules:
                        graph[name].add(target)
            elif isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names if alias.name in modules)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return sorted(found)


def _checked(module: str) -> bool:
    return any(module == package or module.startswith(package + ".") for package in CHECKED)


def test_the_cycle_finder_finds_cycles_and_skips_type_checking_imports(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\nelse:\n    import y\ndef f():\n    import z\n"
    imported = {n.names[0].name for n in _runtime_nodes(ast.parse(source)) if isinstance(n, ast.Import)}
    assert imported == {"y", "z"}


def test_no_import_cycle_through_core_catalog_flows_or_resources() -> None:
    """A cycle counts when any of its modules is in a checked package (one through defs/ as well)."""
    found = [group for group in cycles(import_graph(module_files())) if any(_checked(m) for m in group)]
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(group) for group in found)


if __name__ == "__main__":  # the whole package's cycles, defs/ and cli/ included: python glacier_pipelines_tests/test_import_cycles.py
    for group in cycles(import_graph(module_files())):
        print(len(group), group)
