"""The import structure of `src/aichaos`: layers that import only downwards, and no circle.

Read from the source with `ast` (nothing is imported): every `import`, `from ... import`
(also inside functions and under `TYPE_CHECKING`) and `importlib.import_module("aichaos...")`
with a literal name counts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: tuple[frozenset[str], ...] = (
    # wire formats, parts, records; durations, "did you mean", bounded YAML, output paths,
    # registries of kinds
    frozenset(
        {"wire", "providers", "records", "units", "suggest", "safe_yaml", "secret_shapes"}
        | {"paths", "registry"}
    ),
    # decisions without I/O: fault kinds, plans, shaping; the mock's answers
    frozenset({"faults", "mock.engine", "cassette"}),
    # one exchange's life (sans-IO driver)
    frozenset({"exchange"}),
    # I/O: interpreters of exchange lives (transports, proxy, the ASGI player and the mock
    # server), Toxiproxy, metrics
    frozenset({"intercept", "proxy", "mock", "exchange.asgi", "network", "telemetry"}),
    # what to run and what it means
    frozenset({"experiment", "report"}),
    # commands and entry points
    frozenset({"commands", "cli", "__main__", "__init__", "pytest_plugin", "pytest_experiments"}),
)
"""Lowest first, as in docs/architecture.md: a module may import its own layer and the ones
below, never one above. Names are relative to `aichaos`; the longest that names a module or a
package holding it decides (`mock.engine` before `mock`, `exchange.asgi` before `exchange`)."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "aichaos").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.AST, name: str, is_package: bool) -> Iterator[tuple[str, list[str]]]:
    """(module, names taken from it) for one node."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, []
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = name.split(".")
            base = base[: len(base) - node.level + (1 if is_package else 0)]
            module = ".".join([*base, node.module] if node.module else base)
        else:
            module = node.module or ""
        yield module, [alias.name for alias in node.names]
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        yield node.args[0].value, []


def edges() -> list[Edge]:
    known = modules()
    found = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found.extend(_edges_of(name, path, tree, known))
    return found


def _edges_of(name: str, path: Path, tree: ast.Module, known: dict[str, Path]) -> list[Edge]:
    def owner(module: str) -> str | None:
        while module and module not in known:
            module = module.rpartition(".")[0]
        return module or None

    found = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        for module, names in _imported(node, name, is_package):
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in known]
            # `from package import submodule` depends on the submodule, not on the
            # package's own code (Python runs that first in any case: see parent_edges).
            targets = submodules if names and len(submodules) == len(names) else [module]
            line = getattr(node, "lineno", 0)
            where = f"{path.relative_to(SRC.parent)}:{line}:{getattr(node, 'col_offset', 0)}"
            for target in targets:
                resolved = owner(target)
                if resolved is not None and resolved != name:
                    found.append(Edge(name, resolved, where))
    return found


def _line_col(edge: Edge) -> tuple[int, int]:
    line, col = edge.where.rsplit(":", 2)[1:]
    return int(line), int(col)


def _eager(tree: ast.Module) -> Iterator[ast.AST]:
    """The nodes a module runs when it is imported: not those inside a function or a class
    body's methods, nor under `if TYPE_CHECKING:`."""
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name | ast.Attribute)
            and ast.unparse(node.test).endswith("TYPE_CHECKING")
        ):
            todo.extend(node.orelse)
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def parent_edges() -> list[Edge]:
    """Importing `pkg.sub` runs `pkg/__init__.py` first: an edge from `pkg.sub` (and from
    every module below `pkg`) to whatever that `__init__` imports when it runs. (An edge to
    `pkg` itself would make every package with a lower submodule look upward; what counts is
    what its `__init__` pulls in.) Left out of the circle tests: a package importing its own
    submodules, which import their package, is how Python packages work."""
    known = modules()
    eager: dict[str, list[Edge]] = {}
    for package, path in known.items():
        if path.name != "__init__.py" or package == "aichaos":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        runs = {(n.lineno, n.col_offset) for n in _eager(tree) if hasattr(n, "lineno")}
        eager[package] = [e for e in _edges_of(package, path, tree, known) if _line_col(e) in runs]
    found = []
    for name in known:
        parts = name.split(".")
        for depth in range(2, len(parts)):
            package = ".".join(parts[:depth])
            for edge in eager.get(package, []):
                if edge.target != name and not name.startswith(edge.target + "."):
                    found.append(Edge(name, edge.target, f"{edge.where} (runs {package})"))
    return found


def part_of(module: str) -> str:
    """`aichaos.faults.kinds.network` -> `faults`; `aichaos` -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(module: str) -> int:
    parts = module.split(".")[1:] or ["__init__"]
    while parts:
        name = ".".join(parts)
        for index, members in enumerate(LAYERS):
            if name in members:
                return index
        parts.pop()
    raise AssertionError(f"{module}: no layer; add it to LAYERS in {__file__}")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_part_has_a_layer() -> None:
    for module in modules():
        layer_of(module)


def test_no_import_from_a_lower_layer_up() -> None:
    # `from aichaos import __version__` adds nothing: Python imports the root package
    # before any module of it in any case.
    upward = [
        str(e)
        for e in [*edges(), *parent_edges()]
        if e.target != "aichaos" and layer_of(e.source) < layer_of(e.target)
    ]
    assert upward == [], "imports up the layers:\n" + "\n".join(upward)


def test_no_import_circle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for edge in edges():
        graph.setdefault(edge.source, set()).add(edge.target)
    assert _cycles(graph) == []


def test_no_import_circle_between_parts() -> None:
    graph: dict[str, set[str]] = {}
    for edge in edges():
        source, target = part_of(edge.source), part_of(edge.target)
        if source != target:
            graph.setdefault(source, set()).add(target)
    assert _cycles(graph) == []


def test_the_checker_sees_what_it_must() -> None:
    # The rules above only hold if the reading finds imports of every form.
    found = {(e.source, e.target) for e in edges()}
    assert ("aichaos.intercept.injection", "aichaos.intercept.patch") in found  # from pkg import
    assert ("aichaos.faults.base", "aichaos.faults.plan") in found  # plain from-import
    assert ("aichaos.experiment.runner", "aichaos.network") in found  # inside a function
    assert ("aichaos.experiment.observer", "aichaos.experiment.model") in found  # TYPE_CHECKING
    # importing a submodule runs its package's __init__ (at import time, not in a function)
    parents = {(e.source, e.target) for e in parent_edges()}
    assert ("aichaos.faults.spec", "aichaos.faults.engine") in parents
    assert ("aichaos.mock.engine", "aichaos.mock.app") not in parents  # lazy, in __getattr__
    assert ("aichaos.mock", "aichaos.mock.app") in found
    assert ("aichaos.network.client", "aichaos.network.toxiproxy") in parents
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("aichaos.proxy.app") > layer_of("aichaos.faults.spec")
    assert layer_of("aichaos.mock.app") > layer_of("aichaos.exchange.driver")
    assert layer_of("aichaos.exchange.driver") > layer_of("aichaos.mock.engine")
    assert layer_of("aichaos.exchange.asgi") > layer_of("aichaos.exchange.driver")
    assert layer_of("aichaos") == layer_of("aichaos.cli") == len(LAYERS) - 1
