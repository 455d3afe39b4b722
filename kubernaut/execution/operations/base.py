"""What every catalog action implements: read and check the live object, plan exact writes, apply
them (server-side dry-run or for real), compute the inverse, verify against the live cluster.

An operation is stateless: everything it learns before acting goes into ``Prepared.record`` (stored
as the action's before-state), which is all the inverse and the verification later get.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

from kubernaut.cluster.redaction import Redactor, redactor
from kubernaut.config.settings import ExecutionConfig
from kubernaut.execution import diff as diffs
from kubernaut.execution.catalog import ActionParams
from kubernaut.execution.kube import Kube, KubeError, Obj, PatchType
from kubernaut.models.resource import ResourceRef


class Refused(Exception):
    """A precondition does not hold on the live object: nothing was (or will be) changed."""


@dataclass
class Context:
    kube: Kube
    config: ExecutionConfig
    # Injectable so age-based decisions (orphaned claims) are testable without waiting hours.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    # What never leaves the cluster in clear: diffs and records go through it (redaction config).
    redact: Redactor = field(default_factory=redactor)


@dataclass
class Write:
    """One API write, fully determined before anything is sent (so dry-run and execution send the same)."""

    verb: Literal["patch", "create", "delete", "evict"]
    kind: str
    name: str
    namespace: str | None
    body: Any = None
    patch_type: PatchType = "merge"
    subresource: str | None = None
    # The live object as read, for the diff (None for a creation).
    before: Obj | None = None
    uid: str | None = None
    resource_version: str | None = None
    grace_period_seconds: int | None = None

    @property
    def title(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        sub = f"/{self.subresource}" if self.subresource else ""
        return f"{self.kind}/{where}{self.name}{sub}"


@dataclass
class Prepared:
    writes: list[Write]
    # Before-state needed by the inverse and the verification (JSON-serializable).
    record: dict[str, Any]
    # What the action will set, in the same terms as the record (shown as the result's `after`).
    planned: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Applied:
    diff: str
    responses: list[Obj | None]
    notes: list[str] = field(default_factory=list)
    after: dict[str, Any] = field(default_factory=dict)


class PartialFailure(Exception):
    """Some writes happened, then the action could not finish (e.g. a drain timed out): the record
    keeps what was applied so the inverse (uncordon) stays available."""

    def __init__(self, message: str, applied: Applied, retryable: bool = True) -> None:
        super().__init__(message)
        self.applied = applied
        self.retryable = retryable


@dataclass
class Verification:
    passed: bool | None
    checks: list[str]
    details: dict[str, Any] = field(default_factory=dict)


class Operation:
    """Base class; subclasses set ``name`` and implement prepare/verify (and inverse where one exists)."""

    name: ClassVar[str]

    async def prepare(self, ctx: Context, target: ResourceRef, params: ActionParams,
                      undo: dict[str, Any] | None) -> Prepared:
        """Read the live state, check preconditions (raise Refused), and plan the writes.

        ``undo`` is the before-state record of the action this request inverts (None for ordinary
        requests): it authorizes restoring exactly that state.
        """
        raise NotImplementedError

    async def apply(self, ctx: Context, prepared: Prepared, *, dry_run: bool) -> Applied:
        responses: list[Obj | None] = []
        parts: list[str] = []
        for write in prepared.writes:
            response = await send(ctx.kube, write, dry_run=dry_run)
            after = response if write.verb in ("patch", "create") else None
            parts.append(diffs.object_diff(write.before, after, write.title, ctx.redact))
            responses.append(response)
        return Applied(diff=diffs.join(parts), responses=responses, after=dict(prepared.planned))

    def inverse(self, target: ResourceRef, params: ActionParams, record: dict[str, Any]) -> dict[str, Any] | None:
        """{action, target, parameters} that undoes this action, from its recorded before-state."""
        return None

    async def verify(self, ctx: Context, target: ResourceRef, params: ActionParams,
                     record: dict[str, Any], after: dict[str, Any]) -> Verification:
        raise NotImplementedError

    @staticmethod
    def inverse_request(action: str, target: ResourceRef, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        """What ``inverse`` returns: ``action`` on ``target`` with ``parameters``."""
        return {"action": action, "target": target.model_dump(), "parameters": parameters or {}}


async def send(kube: Kube, write: Write, *, dry_run: bool) -> Obj:
    if write.verb == "patch":
        return await kube.patch(write.kind, write.name, write.namespace, write.body, patch_type=write.patch_type,
                                dry_run=dry_run, subresource=write.subresource)
    if write.verb == "create":
        return await kube.create(write.kind, write.namespace, write.body, dry_run=dry_run)
    if write.verb == "delete":
        return await kube.delete(write.kind, write.name, write.namespace, dry_run=dry_run, uid=write.uid,
                                 resource_version=write.resource_version,
                                 grace_period_seconds=write.grace_period_seconds)
    if write.verb == "evict":
        assert write.namespace is not None
        return await kube.evict(write.name, write.namespace, dry_run=dry_run, uid=write.uid,
                                grace_period_seconds=write.grace_period_seconds)
    raise ValueError(f"unknown write verb {write.verb!r}")


async def must_get(ctx: Context, target: ResourceRef, kind: str | None = None, name: str | None = None,
                   namespace: str | None = None) -> Obj:
    """GET or raise the 404 as is (the pipeline records a clear 'target not found' failure)."""
    return await ctx.kube.get(kind or target.kind, name or target.name,
                              namespace if namespace is not None else target.namespace)


def not_found_check(exc: KubeError, what: str) -> Verification:
    return Verification(False, [f"{what} no longer exists ({exc.status} {exc.reason})"])
