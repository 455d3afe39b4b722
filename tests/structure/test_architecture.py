"""The shape of the package, checked (issue 11): SQL only in kubernaut/storage/, no import cycles, and the
lower layers (models, storage, config, cluster) import no service. Read from the source with ``ast``, so a
function-local import counts as much as a top-level one."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "kubernaut"
SERVICES = ("analysis", "context", "effectiveness", "evaluation", "execution", "gateway", "intelligence",
            "notifications", "orchestration", "processing")
# Packages below the services: they must not know about any of them.
LOWER = ("models", "storage", "config", "cluster")
# Statements, not prose: the keyword followed by what makes it SQL.
SQL = re.compile(r"\bSELECT\b[\s\S]+\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
                 r"|\b(CREATE|ALTER|DROP)\s+(TABLE|INDEX|DATABASE)\b|\bON\s+CONFLICT\b|\bRETURNING\b")


def modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path, ast.parse(path.read_text(), str(path))


def docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings (prose may say SELECT ... FROM)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_sql_lives_only_in_storage() -> None:
    offenders = []
    for name, path, tree in modules():
        if name == "kubernaut.storage" or name.startswith("kubernaut.storage."):
            continue
        skip = docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                if SQL.search(node.value):
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not offenders, "SQL outside kubernaut/storage/:\n" + "\n".join(offenders)


def import_graph() -> dict[str, set[str]]:
    known = {name for name, _, _ in modules()}
    graph: dict[str, set[str]] = {}
    for name, path, tree in modules():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = graph.setdefault(name, set())
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from package import module` imports the module; `from module import name` the module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("kubernaut"):
                    edges.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
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
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    # A package's __init__ importing its own modules is not a cycle of meaning: leave packages out.
    graph = import_graph()
    packages = {name for name, path, _ in modules() if path.name == "__init__.py"}
    graph = {node: {e for e in edges if e not in packages} for node, edges in graph.items() if node not in packages}
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_lower_layers_import_no_service() -> None:
    graph = import_graph()
    offenders = []
    for node, edges in graph.items():
        layer = node.split(".")[1] if node.count(".") else ""
        if layer in LOWER:
            offenders += [f"{node} → {e}" for e in sorted(edges) if e.split(".")[1] in SERVICES]
    assert not offenders, "models/storage/config/cluster import a service:\n" + "\n".join(offenders)


def test_the_checks_see_what_they_check() -> None:
    """Guards against a scan that passes because it reads nothing."""
    assert SQL.search("SELECT id FROM incidents WHERE status = 'open'")
    assert SQL.search("INSERT INTO jobs (kind) VALUES ($1)")
    assert not SQL.search("select the best action from the catalog")
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    graph = import_graph()
    assert len(graph) > 100 and "kubernaut.storage.jobs" in graph["kubernaut.storage.incidents"] | set().union(
        *graph.values())


# Where one service may use another's modules directly, and why. Everything else goes through a job or a
# port (a Protocol the core is given: docs/architecture.md, "Ports").
DECLARED = {
    # The action catalog is the declaration every service reads (what an action is, what it may touch).
    ("analysis", "kubernaut.execution.catalog"): "the menu, parameters and do-no-harm facts of actions",
    ("effectiveness", "kubernaut.execution.catalog"): "the health kinds an action is judged by",
    ("orchestration", "kubernaut.execution.catalog"): "risk, inverse and preludes of the planned action",
    ("notifications", "kubernaut.execution.catalog"): "the risk of the action a notification is routed by",
    ("gateway", "kubernaut.execution.catalog"): "the console's override form (parameter schema) and RBAC of actions",
    ("evaluation", "kubernaut.execution.catalog"): "grading names catalog actions",
    # The analysis gathers its context in-process through the Context API's provider (no second hop).
    ("analysis", "kubernaut.context"): "context provider, its models and summaries, HolmesGPT second opinion",
    ("analysis", "kubernaut.processing.owners"): "/analyze resolves a payload's workload like the processor",
    # Autonomy is evidence from the learning side: feedback computes it from assessed outcomes.
    ("orchestration", "kubernaut.intelligence"): "autonomy evidence (feedback) and its models",
    # `kubernaut eval` is a client of the analysis: it drives the same code path as /api/v1/analyze.
    ("evaluation", "kubernaut.analysis"): "the analysis under evaluation",
    ("evaluation", "kubernaut.context"): "the context provider of the in-process backend",
    ("evaluation", "kubernaut.processing.owners"): "workload resolution, as /analyze does",
}


def test_services_use_each_other_only_where_declared() -> None:
    undeclared = []
    for node, edges in import_graph().items():
        parts = node.split(".")
        if len(parts) < 2 or parts[1] not in SERVICES:
            continue
        for target in sorted(edges):
            other = target.split(".")
            if len(other) < 2 or other[1] not in SERVICES or other[1] == parts[1]:
                continue
            if not any(parts[1] == user and (target == used or target.startswith(used + "."))
                       for user, used in DECLARED):
                undeclared.append(f"{node} → {target}")
    assert not undeclared, ("a service imports another's module outside the declared ports "
                            "(use a job or a port, or declare it here with the reason):\n" + "\n".join(undeclared))
