"""The package's import structure: no cycle between modules under src/, and no module importing
another's private (``_``) name. Read from the source with ``ast``, so a lazy import inside a
function counts as much as one at the top; only ``if TYPE_CHECKING:`` blocks, which never
run, are left out."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module under src/ by dotted name, with its file and whether it is a package."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        package = parts[-1] == "__init__"
        if package:
            parts.pop()
        found[".".join(parts)] = (path, package)
    return found


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that can run: ``if TYPE_CHECKING:`` bodies are skipped."""
    nodes: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) in {
                "TYPE_CHECKING",
                "typing.TYPE_CHECKING",
            }:
                pending.extend(child.orelse)
                continue
            pending.append(child)
    return nodes


def _imports(modules: dict[str, tuple[Path, bool]]) -> dict[str, list[tuple[str, str]]]:
    """For each module, (imported module, imported name or "") pairs within the package."""
    graph: dict[str, list[tuple[str, str]]] = {}
    for name, (path, package) in modules.items():
        pairs: list[tuple[str, str]] = []
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                pairs += [(alias.name, "") for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")[: len(name.split(".")) + package - node.level]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                for alias in node.names:
                    submodule = f"{target}.{alias.name}"
                    if submodule in modules:
                        pairs.append((submodule, ""))
                    else:
                        pairs.append((target, alias.name))
        graph[name] = [(target, imported) for target, imported in pairs if target in modules]
    return graph


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_the_package() -> None:
    graph = _imports(_modules())
    assert len(graph) > 50
    # Known edges, so that a walk that silently found nothing cannot pass.
    assert ("jotkit.jose.jws", "verify_compact") in graph["jotkit.jose.jwt"]
    assert ("jotkit.guard.wsgi", "flask_required") in graph["jotkit.guard.guard"]  # lazy


def test_no_import_cycle_under_src() -> None:
    graph = _imports(_modules())
    edges = {
        name: {target for target, _ in pairs if target != name} for name, pairs in graph.items()
    }
    assert _cycles(edges) == []


def test_a_cycle_is_found_when_there_is_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_a_private_name_of_another() -> None:
    graph = _imports(_modules())
    private = [
        f"{name} imports {imported} from {target}"
        for name, pairs in graph.items()
        for target, imported in pairs
        if imported.startswith("_") and not imported.startswith("__") and target != name
    ]
    assert private == []
