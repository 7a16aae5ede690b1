"""The shape of the code: imports flow one way, and only the simulator talks to SUMO.

Read statically from the source (``ast``), so the check sees imports inside functions too;
imports under ``if TYPE_CHECKING:`` never run and are left out. ``docs/architecture.md``
draws the layers this test keeps.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ltos_traffic", "baselines")
SUMO_APIS = ("libsumo", "traci")  # running simulations: only the simulator module
SIMULATOR = {"ltos_traffic.sim.simulator"}
NET_READERS = {"ltos_traffic.sim.topology"}  # sumolib: only the topology reader


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield child
                yield from _runtime_nodes(child)
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Absolute names ``name`` imports at run time (modules where they are modules)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                out.add(full if full in modules else target)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _unit(module: str) -> str:
    """The layer a module belongs to: its sub-package, or the top-level module itself."""
    parts = module.split(".")
    if parts[0] == "baselines":
        return "baselines"
    return ".".join(parts[:2])


def test_no_import_cycle_between_modules():
    assert _cycles(_graph()) == []


def test_no_import_cycle_between_packages():
    graph = _graph()
    units: dict[str, set[str]] = {}
    for module, targets in graph.items():
        edges = units.setdefault(_unit(module), set())
        edges.update(_unit(t) for t in targets if t in graph and _unit(t) != _unit(module))
    assert _cycles(units) == []


def test_only_the_simulator_imports_libsumo_or_traci():
    graph = _graph()
    users = {
        m for m, targets in graph.items() if any(t.split(".")[0] in SUMO_APIS for t in targets)
    }
    readers = {
        m for m, targets in graph.items() if any(t.split(".")[0] == "sumolib" for t in targets)
    }
    assert users == SIMULATOR
    assert readers == NET_READERS


def test_the_package_never_imports_baselines_except_by_discovery():
    """``baselines`` builds on ``ltos_traffic``; the registry finds it by name at run time."""
    graph = _graph()
    offenders = {
        m
        for m, targets in graph.items()
        if m.startswith("ltos_traffic") and any(t.split(".")[0] == "baselines" for t in targets)
    }
    assert offenders == set()


def test_controllers_know_environments_only_through_their_spec():
    """Algorithms read ``EnvSpec``/``TimeStep`` (``ltos_traffic.types``), never an environment."""
    graph = _graph()
    algorithms = [m for m in graph if m.startswith(("baselines", "ltos_traffic.controllers"))]
    offenders = {
        m
        for m in algorithms
        if any(t.startswith(("ltos_traffic.envs", "ltos_traffic.sim")) for t in graph[m])
    }
    assert offenders == set()


def test_the_checker_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
