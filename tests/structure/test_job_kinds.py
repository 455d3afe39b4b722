"""The job registry (kubernaut/models/jobs.py) against the code: every kind written anywhere in the package is
declared with the modules that write it, and every declared kind is claimed by exactly the deployment the
registry names. Read from the source with ``ast``, so the table cannot drift from what the code does."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from kubernaut.config.settings import WorkConfig
from kubernaut.models.jobs import REGISTRY, AnalysisRef, IncidentRef, JobKind, JobPayload, consumer_of
from kubernaut.storage import jobs

PACKAGE = Path(__file__).resolve().parents[2] / "kubernaut"
#: The functions of kubernaut.storage.jobs that write a job row of a given kind.
WRITERS = {"enqueue", "requeue", "wake"}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), ast.parse(path.read_text(), str(path))


def kind_named(node: ast.expr | None, where: str) -> JobKind:
    """``JobKind.X`` spelled at the call site, nothing else (no strings, no variables)."""
    assert isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "JobKind", \
        f"{where}: a job kind must be written JobKind.<NAME>, found {ast.unparse(node) if node else 'nothing'}"
    assert hasattr(JobKind, node.attr), f"{where}: JobKind.{node.attr} is not declared"
    return JobKind[node.attr]


def writes() -> dict[JobKind, set[str]]:
    """Kind → modules that call jobs.enqueue/requeue/wake with it."""
    found: dict[JobKind, set[str]] = {}
    for module, tree in modules():
        direct = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                  and node.module == "kubernaut.storage.jobs" for alias in node.names if alias.name in WRITERS}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            via_module = isinstance(func, ast.Attribute) and func.attr in WRITERS \
                and isinstance(func.value, ast.Name) and func.value.id == "jobs"
            if not (via_module or (isinstance(func, ast.Name) and func.id in direct)):
                continue
            arg = node.args[1] if len(node.args) > 1 \
                else next((k.value for k in node.keywords if k.arg == "kind"), None)
            found.setdefault(kind_named(arg, f"{module}:{node.lineno}"), set()).add(module)
    return found


def deployment_name(cls: ast.ClassDef) -> str | None:
    for deco in cls.decorator_list:
        if isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr == "deployment":
            for keyword in deco.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    return str(keyword.value.value)
    return None


def handled_kinds(function: ast.AST, handlers: ast.expr, where: str) -> set[JobKind]:
    """The keys of the handler mapping given to ``_start_worker``: a dict literal, or a local variable built from
    one (and items assigned to it)."""
    if isinstance(handlers, ast.Dict):
        return {kind_named(key, where) for key in handlers.keys}
    assert isinstance(handlers, ast.Name), f"{where}: handlers must be a dict literal or a local name"
    kinds: set[JobKind] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == handlers.id and isinstance(node.value, ast.Dict):
                    kinds |= {kind_named(key, where) for key in node.value.keys}
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                        and target.value.id == handlers.id:
                    kinds.add(kind_named(target.slice, where))
    return kinds


def claims() -> dict[JobKind, set[str]]:
    """Kind → Serve deployments whose replicas start a job worker for it."""
    found: dict[JobKind, set[str]] = {}
    for module, tree in modules():
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            name = deployment_name(cls)
            if name is None:
                continue
            for function in (n for n in ast.walk(cls) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
                for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
                    if isinstance(call.func, ast.Attribute) and call.func.attr == "_start_worker":
                        for kind in handled_kinds(function, call.args[0], f"{module}:{call.lineno}"):
                            found.setdefault(kind, set()).add(name)
    return found


def test_every_kind_written_is_declared_with_the_modules_that_write_it() -> None:
    written = writes()
    assert set(written) == set(JobKind), f"declared but never written: {set(JobKind) - set(written)}"
    for kind, producers in written.items():
        assert producers == set(kind.spec.producers), f"{kind}: written by {sorted(producers)}"


def test_every_declared_kind_is_claimed_by_its_consumer_deployment() -> None:
    claimed = claims()
    assert set(claimed) == set(JobKind), f"declared but never claimed: {set(JobKind) - set(claimed)}"
    for kind, deployments in claimed.items():
        assert deployments == {kind.spec.consumer}, f"{kind}: claimed by {sorted(deployments)}"


def test_the_registry_declares_each_kind_once_with_a_payload_that_round_trips() -> None:
    assert set(REGISTRY) == set(JobKind) and all(spec.kind is kind for kind, spec in REGISTRY.items())
    for kind in JobKind:
        payload = kind.spec.payload
        assert issubclass(payload, JobPayload)
        ref = 17 if payload.model_fields else 0  # a singleton is stored with ref_id 0, and only with 0
        assert payload.from_ref(ref).ref_id == ref
        if not payload.model_fields:
            with pytest.raises(ValueError, match="ref_id 0"):
                payload.from_ref(17)
        assert str(kind) == kind.value and f"{kind}" == kind.value  # labels and logs carry the stored name
    assert consumer_of("workflow") == "orchestrator" and consumer_of("replay_probe") is None


async def test_a_job_is_written_only_with_its_declared_kind_and_payload() -> None:
    # Refused before any SQL: no connection is needed to prove it.
    with pytest.raises(TypeError, match="carry AnalysisRef, not IncidentRef"):
        await jobs.enqueue(None, JobKind.WORKFLOW, IncidentRef(incident_id=1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JobKind members"):
        await jobs.wake(None, "workflow", AnalysisRef(analysis_id=1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JobKind members"):
        await jobs.claim(None, ["analyze"], "me", 30, 1)  # type: ignore[arg-type,list-item]
    job = jobs.Job(1, JobKind.ANALYZE, 5, 1)
    assert job.payload(IncidentRef) == IncidentRef(incident_id=5)
    with pytest.raises(TypeError, match="carry IncidentRef"):
        job.payload(AnalysisRef)


def test_work_kinds_are_declared_kinds_with_the_work_defaults() -> None:
    work = WorkConfig()
    assert {work.retry_policy(kind) for kind in JobKind} == {(5, 2.0, 300.0)}  # the defaults of every kind
    with pytest.raises(ValidationError, match=r"'orchestrate' is no longer a job kind.*work\.kinds\.workflow"):
        WorkConfig(kinds={"orchestrate": {"max_attempts": 3}})
    with pytest.raises(ValidationError, match="not a job kind name"):
        WorkConfig(kinds={"assesss": {}})
