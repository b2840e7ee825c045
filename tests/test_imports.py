"""The package's import graph: no cycle, between modules or between sub-packages.

Every ``import`` and ``from ... import`` naming ``topobook`` is read from the source (AST), at
module level and inside functions alike, so a cycle cannot hide in a function-level import.
"""

import ast
from pathlib import Path

import topobook

PACKAGE = Path(topobook.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: {modules of topobook it imports}}`` (``from a import b``, ``b`` a module:
    ``a.b``; ``b`` a name: ``a``)."""
    paths = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        edges = set()
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in paths}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[: len(here) - node.level + 1]
                    base = ".".join(here + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    edges.add(full if full in paths else base)
        graph[name] = {e for e in edges if e in paths and e != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a list of nodes (first = last), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])  # topobook.<sub-package or module>


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules():
    graph = import_graph()
    assert {"topobook.training.run", "topobook.datasets.isbi2012"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_between_subpackages():
    """Sub-packages import each other one way only (a sub-package's __init__ is part of it)."""
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        if module == "topobook":
            continue
        source = _package_of(module)
        packages.setdefault(source, set()).update(
            _package_of(t) for t in targets if t != "topobook" and _package_of(t) != source
        )
    cycle = find_cycle(packages)
    assert cycle is None, "import cycle between sub-packages: " + " -> ".join(cycle)


def test_the_trainer_names_no_data_set():
    """The trainer and the job runner reach a data set only through the registry (the
    configuration names the default, ``dataset="isbi2012"``)."""
    for name in ("run", "jobs"):
        source = (PACKAGE / "training" / f"{name}.py").read_text()
        for dataset in ("isbi2012", "topomortar"):
            assert dataset not in source, f"training/{name}.py names {dataset}"
