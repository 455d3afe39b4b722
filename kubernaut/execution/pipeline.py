"""The executor's logic: every request passes the same safety pipeline, in this order, no bypass.

  claim the idempotency key → catalog (action, target grammar) → scope → parameter validation →
  [inverse authorization] → cooldown → per-target lock → blast-radius budget → live preconditions and
  server-side dry-run with a diff → (dry-run mode stops here) → execute (bounded 409 retries) →
  record result, before-state and inverse.

Each stage that says no ends the request with a recorded, explained outcome: ``refused`` when a
safety rule or precondition said no (nothing was sent to the cluster), ``failed`` when the API
said no or could not be reached. Nothing is reported as done that was not done.

This class is independent of Ray: the Serve deployment is a thin shell around it, and tests drive
it directly with a database and an ApiClient.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from kubernaut.cluster.fleet import target_key
from kubernaut.cluster.redaction import redactor
from kubernaut.config.settings import ExecutionConfig, ExecutionMode, RedactionConfig
from kubernaut.execution import budget, locks, scope
from kubernaut.execution.catalog import ActionParams, ActionSpec, CatalogError, catalog_document, get_action
from kubernaut.execution.catalog.hygiene import safe_repr
from kubernaut.execution.kube import Kube, KubeError, KubeUnreachable
from kubernaut.execution.operations import OPERATIONS, Context, PartialFailure, Refused, Verification, observe
from kubernaut.models.resource import ResourceRef
from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.storage import audit
from kubernaut.storage import execution as records
from kubernaut.storage import execution_locks as lock_store
from kubernaut.storage.database import Database, transient
from kubernaut.storage.jobs import replica_identity

logger = logging.getLogger(__name__)


class Stop(Exception):
    """Ends the pipeline with a recorded outcome."""

    def __init__(self, status: str, stage: str, message: str, *, error: str | None = None, retryable: bool = False,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.stage = stage
        self.message = message
        self.error = error
        self.retryable = retryable
        self.extra = extra


def _refuse(stage: str, message: str, retryable: bool = False) -> Stop:
    return Stop("refused", stage, f"refused ({stage}): {message}", error=message, retryable=retryable)


class Executor:
    def __init__(
        self,
        db: Database,
        config: ExecutionConfig,
        kube: Kube | None,
        *,
        cluster_reason: str | None = None,
        cluster_source: str = "none",
        owner: str | None = None,
        clock: Callable[[], datetime] | None = None,
        redaction: RedactionConfig | None = None,
        cluster: str | None = None,
        fleet_home: str | None = None,
        refuse_all: str | None = None,
    ) -> None:
        self.db = db
        # Every state, diff and bundle is redacted before it is recorded (None: the default patterns).
        self.redact = redactor(redaction)
        self.config = config
        self.kube = kube
        self.cluster_reason = cluster_reason
        self.cluster_source = cluster_source
        self.owner = owner or replica_identity("executor")
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        # The cluster this executor acts on (recorded on each action). In a fleet (``fleet_home`` set) its
        # locks, cooldowns and budget are its own; a cluster that is not configured gets an executor that
        # refuses everything (``refuse_all``), so its requests are recorded and explained, never run elsewhere.
        self.cluster = cluster
        self.fleet_home = fleet_home
        self.refuse_all = refuse_all

    def _key(self, target: ResourceRef) -> str:
        if self.fleet_home is None:
            return target.key
        return target_key(target.key, self.cluster, self.fleet_home)

    @property
    def _budget_cluster(self) -> str | None:
        return self.cluster if self.fleet_home is not None else None

    @property
    def pool(self) -> Any:
        return self.db.pool

    def _ctx(self) -> Context:
        assert self.kube is not None
        return Context(self.kube, self.config, self._clock, self.redact)

    # -- public API -------------------------------------------------------------------------------

    def catalog(self) -> list[dict[str, Any]]:
        return catalog_document()

    async def status(self) -> dict[str, Any]:
        return {
            "mode": self.config.mode.value,
            "cluster": self.cluster_source,
            "cluster_reason": self.cluster_reason,
            "effective_dry_run": self.config.mode is ExecutionMode.DRY_RUN or self.kube is None,
            "locks": [{k: str(v) for k, v in lock.model_dump().items()} for lock in await lock_store.held(self.pool)],
            "budget": await budget.usage(self.pool, self.config, self._budget_cluster),
        }

    async def execute(self, request: ActionRequest) -> ActionResult:
        dry_run = request.dry_run or self.config.mode is ExecutionMode.DRY_RUN
        row, new = await records.claim(self.pool, request, dry_run=dry_run, owner=self.owner,
                                       lease_s=self.config.lock_ttl_s, plan=[], target_key=self._key(request.target),
                                       cluster=self.cluster)
        if not new:
            return await self._recorded(row)
        action_id = row.id
        state: dict[str, Any] = {"stage": "validation", "sent": False}
        # The record stays leased while this replica works on it (waiting for a lock included), so a
        # retry of the key waits for us instead of declaring us dead.
        renewer = asyncio.get_running_loop().create_task(self._keep_leased(action_id, state))
        try:
            return await self._run(action_id, request, dry_run, state)
        except Stop as stop:
            return await self._finish(action_id, stop, state)
        except (KubeError, KubeUnreachable) as exc:
            stop = api_failure(exc, state["stage"], state["sent"], self.config.conflict_retries + 1)
            return await self._finish(action_id, stop, state)
        except Exception as exc:  # never leave a record running, never claim success
            logger.exception("executor error in action %s (%s)", action_id, request.action)
            unknown = " The change may or may not have been applied: verify the target." if state["sent"] else ""
            # A database hiccup before anything was sent changed nothing: the workflow may try again
            # (engine.py reschedules retryable failures) instead of failing the remediation for good.
            again = transient(exc) and not state["sent"]
            stop = Stop("failed", state["stage"], f"executor error: {type(exc).__name__}: {exc}.{unknown}",
                        error=f"{type(exc).__name__}: {exc}", retryable=again)
            return await self._finish(action_id, stop, state)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def verify(self, action_id: int) -> dict[str, Any]:
        """{action_id, passed (None = cannot tell yet), checks, details}, checked against the live cluster."""
        row = await records.fetch(self.pool, action_id)
        if row is None:
            return {"action_id": action_id, "passed": False, "checks": [f"no action #{action_id}"], "details": {}}
        outcome = await self._verify_row(row)
        result = {"action_id": action_id, "passed": outcome.passed, "checks": outcome.checks,
                  "details": outcome.details}
        await records.save_verification(self.pool, action_id, {**result, "at": self._clock().isoformat()})
        return result

    # -- the pipeline -----------------------------------------------------------------------------

    async def _run(self, action_id: int, request: ActionRequest, dry_run: bool, state: dict[str, Any]
                   ) -> ActionResult:
        target = request.target
        # 1. catalog: a known action, and a target whose kind and names follow the Kubernetes grammar
        try:
            spec = get_action(request.action)
            spec.validate_target(target)
        except CatalogError as exc:
            raise _refuse("validation", str(exc)) from None
        state["spec"] = spec
        if self.refuse_all is not None:
            raise _refuse("scope", self.refuse_all)

        if spec.name == "notify_only":  # no Kubernetes call at all, hence no scope or cluster needed
            self._params(spec, target, request)
            raise Stop("dry_run" if dry_run else "succeeded", "done",
                       "notify_only: nothing to do in the cluster; the notification service tells a human")

        if self.kube is None:
            params = self._params(spec, target, request)
            plan = spec.plan(target, params).steps
            await records.update(self.pool, action_id, plan=plan)
            if dry_run:
                raise Stop("dry_run", "dry_run", (
                    f"dry-run: no cluster connection ({self.cluster_reason}); the plan is recorded, nothing was "
                    "sent to any API server (scope, preconditions and server-side dry-run not checked)"))
            raise Stop("failed", "scope", f"no Kubernetes API connection ({self.cluster_reason}): nothing was changed",
                       error="no cluster connection", retryable=True)
        ctx = self._ctx()
        # The plan (what would be sent) goes on the record even when a later stage refuses, so a
        # human sees what was asked; invalid parameters have no plan and are refused at stage 3.
        with contextlib.suppress(CatalogError):
            await records.update(self.pool, action_id, plan=spec.plan(target, request.parameters).steps)

        # 2. scope
        state["stage"] = "scope"
        decision = await scope.check(ctx.kube, target, self.config)
        if not decision.managed:
            raise _refuse("scope", decision.reason)

        # 3. parameters
        state["stage"] = "validation"
        params = self._params(spec, target, request)

        undo = await self._authorize_inverse(action_id, request, spec, params)

        if not spec.mutates:  # collect_diagnostics: read-only, so no cooldown, lock or budget
            state["stage"] = "execute"
            bundle = await observe.collect(ctx, target, params)
            mode = " (dry-run mode: reading changes nothing)" if dry_run else ""
            notes = "; ".join(bundle.get("notes", []))
            raise Stop("dry_run" if dry_run else "succeeded", "done",
                       f"diagnostics collected: {len(bundle.get('pods', []))} pod(s), "
                       f"{len(bundle.get('events', []))} event(s){mode}" + (f"; {notes}" if notes else ""),
                       result={"bundle": bundle})

        # 4. cooldown per (target, action). An authorized inverse is a rollback of one recorded action,
        # not a repeat: holding it back would keep a harmful change in place. It cannot oscillate
        # either, since each recorded action can be undone once.
        state["stage"] = "cooldown"
        left = 0.0
        if undo is None:
            left = await budget.cooldown_left(self.pool, self._key(target), spec.name, self.config.cooldown_s)
        if left > 0:
            raise _refuse("cooldown", (
                f"{spec.name} ran on {target} less than {self.config.cooldown_s:.0f}s ago (execution.cooldown_s); "
                f"retry in {left:.0f}s"), retryable=True)

        # 5. one execution per target at a time
        state["stage"] = "lock"
        try:
            async with locks.target_lock(
                self.pool, self._key(target), action_id=action_id, action=spec.name, owner=self.owner,
                ttl_s=self.config.lock_ttl_s, wait_s=self.config.lock_wait_s,
            ):
                return await self._locked(action_id, request, spec, params, undo, dry_run, state)
        except locks.LockBusy as busy:
            raise _refuse("lock", f"{busy}; waited {self.config.lock_wait_s:.0f}s (execution.lock_wait_s)",
                          retryable=True) from None

    async def _locked(self, action_id: int, request: ActionRequest, spec: ActionSpec, params: ActionParams,
                      undo: dict[str, Any] | None, dry_run: bool, state: dict[str, Any]) -> ActionResult:
        ctx = self._ctx()
        target = request.target
        op = OPERATIONS[spec.name]

        # 6. blast-radius budget (reserved for live runs; dry-run mode only asks)
        state["stage"] = "budget"
        unavailable: set[str] = set()
        if spec.name in budget.NODE_OUTAGE_ACTIONS:
            unavailable = {n["metadata"]["name"] for n in await ctx.kube.list("Node")
                           if (n.get("spec") or {}).get("unschedulable")}
        verdict = await budget.admit(
            self.pool, action_id, action=spec.name, target_key=self._key(target), cluster=self._budget_cluster,
            namespace=target.name if target.kind == "Namespace" else target.namespace, config=self.config,
            unavailable_nodes=unavailable, node=target.name if target.kind == "Node" else None, reserve=not dry_run,
        )
        if not verdict.allowed:
            raise _refuse("budget", verdict.reason, retryable=True)
        state["reserved"] = not dry_run

        attempts = self.config.conflict_retries + 1
        for attempt in range(attempts):
            # 7. live preconditions, then the server-side dry-run of exactly the writes to be sent
            state["stage"] = "preconditions"
            try:
                prepared = await op.prepare(ctx, target, params, undo)
            except Refused as exc:
                raise _refuse("preconditions", str(exc)) from None
            state["prepared"] = prepared
            state["stage"] = "dry_run"
            try:
                rehearsal = await op.apply(ctx, prepared, dry_run=True)
            except KubeError as exc:
                if exc.conflict and exc.reason == "Conflict" and attempt + 1 < attempts:
                    await self._backoff(attempt)
                    continue
                raise
            notes = [*prepared.notes, *rehearsal.notes]
            state.update(diff=rehearsal.diff, before=prepared.record, after=rehearsal.after, notes=notes)
            await records.update(self.pool, action_id, diff=self.redact.text(rehearsal.diff),
                                 before=self.redact.obj(prepared.record))
            if dry_run:
                raise Stop("dry_run", "dry_run", _with_notes(
                    "dry-run: the API server accepted the change with dryRun=All (diff recorded); execution mode "
                    "is dry-run or the request asked for a dry-run, so nothing was changed", notes))

            # 8. execute
            state["stage"] = "execute"
            if state.get("lease_lost") or not await records.renew(self.pool, action_id, self.owner,
                                                                    self.config.lock_ttl_s):
                # Someone declared this attempt dead (our lease lapsed): acting now could act twice.
                raise Stop("failed", "execute", "the action record's lease was lost before executing: nothing was "
                           "changed; submit the request again", error="lease lost", retryable=True)
            await self._audit_executing(action_id, request, rehearsal.diff)
            state["sent"] = True
            try:
                applied = await op.apply(ctx, prepared, dry_run=False)
            except KubeError as exc:
                if exc.conflict and exc.reason == "Conflict":
                    # The resourceVersion precondition failed: the server applied nothing. Re-read,
                    # re-check the preconditions against the new state, and try again (bounded).
                    state["sent"] = len(prepared.writes) > 1  # earlier writes of a multi-write action did land
                    if attempt + 1 < attempts:
                        await self._backoff(attempt)
                        continue
                raise
            except PartialFailure as exc:
                inverse = self._inverse(op, spec, target, params, prepared.record, action_id)
                raise Stop("failed", "execute", str(exc), error=str(exc), retryable=exc.retryable,
                           diff=exc.applied.diff or rehearsal.diff, inverse=inverse) from None
            inverse = self._inverse(op, spec, target, params, prepared.record, action_id)
            # 9. record
            raise Stop("succeeded", "done", _with_notes(
                f"{spec.name} applied to {target}" + (f" (after {attempt} conflict retr"
                                                      f"{'y' if attempt == 1 else 'ies'})" if attempt else ""),
                [*notes, *applied.notes]), diff=applied.diff or rehearsal.diff, after=applied.after, inverse=inverse)
        raise AssertionError("unreachable: the last attempt either returns or raises")

    # -- stages' helpers --------------------------------------------------------------------------

    def _params(self, spec: ActionSpec, target: ResourceRef, request: ActionRequest) -> ActionParams:
        try:
            return spec.validate(target, request.parameters)
        except CatalogError as exc:
            raise _refuse("validation", str(exc)) from None

    async def _authorize_inverse(self, action_id: int, request: ActionRequest, spec: ActionSpec,
                                 params: ActionParams) -> dict[str, Any] | None:
        """An inverse request may restore a recorded before-state (e.g. lower a limit it raised), so it
        must be exactly the inverse recorded on a live action that succeeded and was not undone yet."""
        if request.inverse_of is None:
            return None
        undone = await records.fetch(self.pool, request.inverse_of)
        if undone is None:
            raise _refuse("validation", f"inverse_of: no action #{request.inverse_of}")
        if undone.dry_run or undone.status != "succeeded":
            raise _refuse("validation", f"inverse_of: action #{request.inverse_of} was not executed "
                                        f"({'dry-run' if undone.dry_run else undone.status}): nothing to undo")
        recorded = undone.inverse
        if not recorded:
            raise _refuse("validation", f"inverse_of: action #{request.inverse_of} ({undone.action}) has no inverse")
        try:
            recorded_params = get_action(recorded["action"]).parse_params(recorded["parameters"])
        except CatalogError as exc:
            raise _refuse("validation", f"inverse_of: the recorded inverse is not valid: {exc}") from None
        same = (recorded["action"] == spec.name
                and ResourceRef.model_validate(recorded["target"]) == request.target
                and recorded_params.model_dump(mode="json") == params.model_dump(mode="json"))
        if not same:
            raise _refuse("validation", (
                f"inverse_of: this request is not the recorded inverse of action #{request.inverse_of} "
                f"(expected {recorded['action']} on {ResourceRef.model_validate(recorded['target'])} with "
                f"{safe_repr(recorded['parameters'], 200)})"))
        if not request.dry_run and self.config.mode is ExecutionMode.LIVE:
            other = await records.undone_by(self.pool, request.inverse_of, action_id)
            if other is not None:
                raise _refuse("validation", f"inverse_of: action #{request.inverse_of} is already undone by #{other}")
        return dict(undone.before or {})

    def _inverse(self, op: Any, spec: ActionSpec, target: ResourceRef, params: ActionParams,
                 record: dict[str, Any], action_id: int) -> dict[str, Any] | None:
        """The recorded inverse, only if it is itself a valid catalog request (else a human restores)."""
        if spec.inverse is None:
            return None
        inverse = op.inverse(target, params, record)
        if inverse is None:
            return None
        try:
            inv_spec = get_action(inverse["action"])
            inv_target = ResourceRef.model_validate(inverse["target"])
            inv_spec.validate(inv_target, inverse["parameters"])
        except (CatalogError, ValueError) as exc:
            logger.info("action %s: inverse not expressible as a catalog request: %s", action_id, exc)
            return None
        return {**inverse, "inverse_of": action_id}

    async def _keep_leased(self, action_id: int, state: dict[str, Any]) -> None:
        interval = self.config.lock_ttl_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                if not await records.renew(self.pool, action_id, self.owner, self.config.lock_ttl_s):
                    state["lease_lost"] = True
                    logger.error("action %s: lease lost (interrupted by another replica?)", action_id)
                    return
            except Exception:  # a database hiccup: the next round tries again before the lease ends
                logger.warning("action %s: renewing the lease failed", action_id, exc_info=True)

    async def _backoff(self, attempt: int) -> None:
        # Bounded exponential backoff between conflict retries: the other writer usually finishes fast.
        await asyncio.sleep(self.config.conflict_backoff_s * (2 ** attempt))

    async def _audit_executing(self, action_id: int, request: ActionRequest, diff: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await audit.append(conn, "executor", "action.executing", request.incident_id, {
                "action_id": action_id, "action": request.action, "target": self._key(request.target),
                "diff_lines": diff.count("\n"), **({"cluster": self.cluster} if self.fleet_home is not None else {}),
            })

    async def _finish(self, action_id: int, stop: Stop, state: dict[str, Any]) -> ActionResult:
        if stop.status != "succeeded" and not state.get("sent") and state.get("reserved"):
            # Nothing reached the cluster: the budget slot goes back.
            await budget.give_back(self.pool, action_id)
        error = stop.error
        if stop.status == "failed" and error is None:
            error = stop.message
        diff, result = stop.extra.get("diff", state.get("diff")), stop.extra.get("result")
        row = await records.finish(
            self.pool, action_id, status=stop.status, stage=stop.stage, message=stop.message, error=error,
            retryable=stop.retryable, diff=self.redact.text(diff) if diff else diff,
            before=self.redact.obj(state.get("before")),
            after=self.redact.obj(stop.extra.get("after", state.get("after"))),
            inverse=stop.extra.get("inverse"), result=self.redact.obj(result), owner=self.owner,
        )
        if row is None:  # an interruption sweep recorded something else meanwhile; that record stands
            row = await records.fetch(self.pool, action_id)
        spec = state.get("spec")
        return records.to_result(row, spec.verification if spec else "")

    async def _recorded(self, row: records.ActionRecord) -> ActionResult:
        """A request whose key was seen before: its outcome, never a second execution.

        While the first attempt is still running (on this or another replica) we wait for it; if its
        replica died (lease expired) the record says so and stays failed.
        """
        action_id = row.id
        delay = 0.1
        while row.status == records.RUNNING:
            interrupted = await records.interrupt_if_expired(self.pool, action_id)
            if interrupted is not None:
                row = interrupted
                break
            await asyncio.sleep(delay)  # the first attempt runs elsewhere; its record is the signal
            delay = min(delay * 2, 1.0)
            row = await records.fetch(self.pool, action_id)
        spec = _spec_or_none(row.action)
        return records.to_result(row, spec.verification if spec else "")

    # -- verification -----------------------------------------------------------------------------

    async def _verify_row(self, row: records.ActionRecord) -> Verification:
        if row.status == records.RUNNING:
            return Verification(None, ["the action is still running"])
        if row.dry_run:
            return Verification(None, ["dry-run: nothing was changed, so there is nothing to verify"])
        if row.status != "succeeded":
            return Verification(False, [f"the action did not succeed ({row.status}): {row.error or ''}"])
        spec = _spec_or_none(row.action)
        if spec is None:
            return Verification(None, [f"unknown action {row.action!r}"])
        if spec.name == "notify_only":
            return Verification(None, ["nothing was done in the cluster; delivery is checked by the notification "
                                       "service"])
        if spec.name == "collect_diagnostics":
            bundle = (row.result or {}).get("bundle")
            return Verification(bundle is not None, ["diagnostics bundle stored on the action" if bundle
                                                     else "no diagnostics bundle stored"])
        if self.kube is None:
            return Verification(None, [f"no cluster connection ({self.cluster_reason})"])
        target = ResourceRef.model_validate(row.target)
        params = spec.parse_params(row.parameters)
        try:
            return await OPERATIONS[spec.name].verify(self._ctx(), target, params, row.before or {},
                                                      row.after or {})
        except KubeError as exc:
            if exc.not_found:
                return Verification(False, [f"{target} no longer exists"])
            return Verification(None, [f"cannot read the target: {exc}"])
        except KubeUnreachable as exc:
            return Verification(None, [f"Kubernetes API unreachable: {exc}"])


def _spec_or_none(name: str) -> ActionSpec | None:
    try:
        return get_action(name)
    except CatalogError:
        return None


def _with_notes(message: str, notes: list[str]) -> str:
    return message + ("; notes: " + "; ".join(notes) if notes else "")


def api_failure(exc: KubeError | KubeUnreachable, stage: str, sent: bool, attempts: int) -> Stop:
    """What a Kubernetes API error means for this request, in words an operator can act on."""
    if isinstance(exc, KubeUnreachable):
        tail = ("the change may or may not have been applied: verify the target before retrying" if sent
                else "nothing was changed")
        return Stop("failed", stage, f"Kubernetes API unreachable: {exc}; {tail}", error=f"unreachable: {exc}",
                    retryable=True)
    if exc.forbidden:
        return Stop("failed", stage, (
            f"forbidden by RBAC: {exc.message or exc}. The executor's identity lacks this permission; its "
            "ClusterRole is generated from the catalog (kubernaut.execution.catalog.rbac_rules)"),
            error=f"403 Forbidden: {exc.message}")
    if exc.not_found:
        return Stop("failed", stage, f"target not found: {exc.message or exc}", error=f"404 NotFound: {exc.message}")
    if exc.conflict and exc.reason == "Conflict":
        return Stop("failed", stage, (
            f"conflict: the object kept changing while we tried to update it ({attempts} attempt(s), "
            f"execution.conflict_retries); nothing was applied: {exc.message}"),
            error=f"409 Conflict: {exc.message}", retryable=True)
    if exc.conflict:
        return Stop("failed", stage, f"conflict: {exc.message or exc}", error=f"409 {exc.reason}: {exc.message}")
    if exc.too_many:
        return Stop("failed", stage, (
            f"the API server refused for now (429 {exc.reason}): {exc.message}; usually a PodDisruptionBudget "
            "forbids this eviction at the moment; nothing was forced"), error=f"429: {exc.message}", retryable=True)
    if exc.status >= 500:
        return Stop("failed", stage, f"API server error {exc.status}: {exc.message}", error=str(exc), retryable=True)
    return Stop("failed", stage, f"the API server rejected the request ({exc.status} {exc.reason}): {exc.message}",
                error=str(exc))
