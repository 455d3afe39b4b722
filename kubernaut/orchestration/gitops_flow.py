"""The workflow's GitOps steps (issue 15): the mode (step ``gitops``), then for ``propose`` the change in Git
(step ``propose:opened``), its review followed on the forge (open → merged, or closed → ``declined``; a base
that moved is re-proposed), the sync seen on the cluster (step ``synced``) and completion. Nothing here changes
the cluster: in ``propose`` mode no executor call other than the dry-runs is ever made.

Every wait is a ``Reschedule`` of the workflow job (the durable job mechanism), every transition a step row, so
a replica that dies anywhere leaves a workflow another resumes without opening a second PR.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from kubernaut.config.gitops import RepositoryConfig
from kubernaut.execution.catalog import get_action
from kubernaut.execution.catalog.errors import CatalogError
from kubernaut.gitops.changes import FieldChange, NoGitForm, changes_for
from kubernaut.gitops.forge import ForgeError, PullRequest
from kubernaut.gitops.manifests import ManifestNotFound
from kubernaut.gitops.models import GitOpsInfo
from kubernaut.gitops.proposal import ProposalRequest, Proposed
from kubernaut.gitops.repository import GitError
from kubernaut.models.jobs import ActionRef, JobKind
from kubernaut.models.resource import ResourceRef
from kubernaut.orchestration.gitops_mode import decide_mode
from kubernaut.storage import gitops as gitops_store
from kubernaut.storage import jobs, notifications
from kubernaut.storage.jobs import Reschedule
from kubernaut.storage.workflows import PlanStep

# The engine and its run (kubernaut/orchestration/engine.py) are passed in, not imported: no import cycle.
WorkflowEngine = Any
_Run = Any


class GitOpsPort(Protocol):
    def repository(self, info: GitOpsInfo) -> RepositoryConfig | None: ...
    async def propose(self, repo: RepositoryConfig, req: ProposalRequest) -> Proposed: ...
    async def state(self, repo: RepositoryConfig, number: int) -> PullRequest: ...
    async def repropose(self, repo: RepositoryConfig, req: ProposalRequest, proposed: Proposed) -> Proposed: ...
    async def synced(self, changes: list[FieldChange]) -> tuple[bool | None, list[str]]: ...
    async def revision_images(self, replicaset: str, namespace: str | None) -> dict[str, str]: ...
    async def owner_revision(self, info: GitOpsInfo) -> str | None: ...
    async def rollout(self, kind: str, name: str, namespace: str | None) -> tuple[bool | None, str]: ...
    async def revert(self, repo: RepositoryConfig, proposed: Proposed, why: str) -> PullRequest: ...
    async def reverted_by(self, kind: str, name: str, namespace: str | None, since: datetime) -> str | None: ...


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def route(engine: WorkflowEngine, run: _Run) -> dict[str, Any]:
    """The ``gitops`` step: the mode of this workflow's main action, decided once and recorded."""
    if "gitops" in run.steps:
        return run.steps["gitops"].detail
    facts = await gitops_store.owner_facts(engine.db.pool, run.workflow.analysis_id)
    info = GitOpsInfo.model_validate({**facts, "via": "analysis facts"}) if facts else None
    main = run.plan[-1]
    decision = decide_mode(engine.policy.gitops, action=main.action, environment=run.incident.environment,
                           namespace=main.target.namespace, gitops=info,
                           unknown_environment=engine.cfg.unknown_environment)
    detail: dict[str, Any] = {**decision.model_dump(), "gitops": info.model_dump(mode="json") if info else None,
                              "fallback": None}
    if info is not None:  # unmanaged targets get no step: their workflows read as before
        await engine._record(run, "gitops", "succeeded", detail)
    return detail


async def _request(port: GitOpsPort, run: _Run, info: GitOpsInfo) -> ProposalRequest:
    main = run.plan[-1]
    dry = run.steps.get(f"dry_run:{len(run.plan) - 1}")
    after = (dry.detail.get("after") if dry is not None else None) or {}
    images = None
    if main.action == "rollback_deployment" and after.get("replicaset"):
        # The revision rolled back to, as images: what the manifest in Git must say.
        images = await port.revision_images(str(after["replicaset"]), main.target.namespace)
    changes = changes_for(main.action, main.target.kind, main.target.name, main.target.namespace, main.parameters,
                          after, images=images)
    return ProposalRequest(
        incident_id=run.incident_id, workflow_id=run.id, action=main.action, target=str(main.target),
        changes=changes, gitops=info, reason=run.proposal.root_cause[:2000],
        evidence=[str(r)[:300] for r in run.proposal.reasoning[:10]],
        dry_run_diff=(dry.detail.get("diff") if dry is not None else None))


async def _fall_back(engine: WorkflowEngine, run: _Run, detail: dict[str, Any], why: str) -> str:
    """The change cannot be made in Git: the policy's fallback_mode, recorded on the ``gitops`` step."""
    fallback = engine.policy.gitops.fallback_mode
    await engine._record(run, "gitops", "succeeded", {**detail, "fallback": fallback, "fallback_reason": why})
    if fallback == "escalate":
        await engine._finish(run, "review", f"the change cannot be proposed in Git ({why}); fallback_mode "
                             "escalate: nothing was changed, a human decides")
        return "ended"
    return "live"


async def drive(engine: WorkflowEngine, run: _Run, detail: dict[str, Any]) -> str:
    """Carry a non-live mode forward. Returns ``ended`` (the workflow finished) or ``live`` (go on with the live
    change: live-and-propose once its PR is open, or a fallback); raises Reschedule while it waits."""
    port = engine.gitops
    info = GitOpsInfo.model_validate(detail["gitops"])
    if detail.get("fallback"):
        return "live"
    if port is None:
        return await _fall_back(engine, run, detail, "no GitOps service in this orchestrator")
    repo = port.repository(info)
    if repo is None:
        where = info.repo or "an unknown repository"
        return await _fall_back(engine, run, detail, f"no repository configured for {where} (gitops.repositories)")
    opened = run.steps.get("propose:opened")
    if opened is not None:  # the request as proposed, not recomputed from a cluster that has moved on
        req = ProposalRequest.model_validate(opened.detail["request"])
    else:
        try:
            req = await _request(port, run, info)
        except NoGitForm as exc:
            return await _fall_back(engine, run, detail, str(exc))
        opened = await _open(engine, run, port, repo, req, detail)
        if opened is None:
            return await _after_open_failure(engine, run, detail)
    if detail["mode"] == "live-and-propose":
        return "live"
    return await _follow(engine, run, port, repo, req, Proposed.model_validate(opened.detail["proposed"]))


async def _after_open_failure(engine: WorkflowEngine, run: _Run, detail: dict[str, Any]) -> str:
    failure = run.steps.get("propose")
    if failure is not None and failure.detail.get("fallback"):
        return await _fall_back(engine, run, detail, failure.detail.get("error", "manifest not found"))
    return "ended"


async def _open(engine: WorkflowEngine, run: _Run, port: GitOpsPort, repo: RepositoryConfig, req: ProposalRequest,
                detail: dict[str, Any]) -> Any:
    """Open the PR once (``propose:opened``); a failure ends the workflow clearly, or falls back (layout)."""
    attempts = int((run.steps.get("propose:retry").detail.get("attempts", 0)) if "propose:retry" in run.steps else 0)
    try:
        proposed = await port.propose(repo, req)
    except ManifestNotFound as exc:
        await engine._record(run, "propose", "failed", {"error": str(exc), "fallback": True})
        return None
    except (ForgeError, GitError) as exc:
        transient = getattr(exc, "transient", False)
        if transient and attempts + 1 < engine.config.gitops.max_attempts:
            await engine._record(run, "propose:retry", "failed", {"attempts": attempts + 1, "error": str(exc)})
            raise Reschedule(min(300.0, 2.0 ** (attempts + 1)), f"proposal: {exc}") from None
        kind = "the forge refused the credentials" if getattr(exc, "auth", False) else \
            f"the repository or forge is unavailable after {attempts + 1} attempt(s)" if transient else "it failed"
        await engine._record(run, "propose", "failed", {"error": str(exc)})
        await engine._finish(run, "failed", f"the change could not be proposed in Git ({kind}: {exc}); nothing "
                             "was changed in the cluster: escalated to a human")
        return None
    async with engine.db.pool.acquire() as conn, conn.transaction():
        await notifications.create(
            conn, run.incident_id, "workflow.proposed", severity="info",
            title=f"[kubernaut] proposed in Git: {req.action} on {req.target} (PR #{proposed.pr.number})",
            body=f"Incident #{run.incident_id}: {req.reason}\nPull request: {proposed.pr.url or proposed.pr.number} "
                 f"({proposed.repository}, branch {proposed.branch} → {proposed.base}, {', '.join(proposed.files)}).\n"
                 f"Nothing was changed live; the workflow follows the PR (merge → sync → verify).\n{proposed.diff}")
    engine._on_notification()
    await engine._record(run, "propose:opened", "succeeded", {
        "proposed": proposed.model_dump(mode="json"), "request": req.model_dump(mode="json"),
        "opened_at": _now().isoformat()})
    await engine._set_phase(run, "proposed")
    return run.steps["propose:opened"]


async def _follow(engine: WorkflowEngine, run: _Run, port: GitOpsPort, repo: RepositoryConfig, req: ProposalRequest,
                  proposed: Proposed) -> str:
    cfg = engine.config.gitops
    if "propose" not in run.steps:
        try:
            pr = await port.state(repo, proposed.pr.number)
        except ForgeError as exc:
            if exc.transient:
                raise Reschedule(cfg.poll_interval_s, f"forge: {exc}") from None
            await engine._finish(run, "failed", f"following PR #{proposed.pr.number} failed: {exc}: escalated")
            return "ended"
        if pr.state == "closed":
            who = pr.closed_by or "someone"
            await resume_self_heal(engine, run, f"PR #{pr.number} was closed by {who}")
            await engine._record(run, "propose", "declined", {"pr": pr.model_dump(mode="json"), "closed_by": who})
            await engine._finish(run, "declined", f"PR #{pr.number} ({pr.url}) was closed by {who} without merging: "
                                 "nothing was changed")
            return "ended"
        if pr.state == "open":
            opened_at = datetime.fromisoformat(run.steps["propose:opened"].detail["opened_at"])
            if _now() - opened_at > timedelta(seconds=cfg.review_timeout_s):
                await resume_self_heal(engine, run, "review timeout")
                await engine._finish(run, "timed_out", f"PR #{pr.number} was neither merged nor closed within "
                                     f"{cfg.review_timeout_s:.0f}s: escalated")
                return "ended"
            if pr.mergeable is False:  # the base moved under it: make the change again on the new base
                try:
                    again = await port.repropose(repo, req, proposed)
                except (ForgeError, GitError) as exc:
                    if exc.transient:
                        raise Reschedule(cfg.poll_interval_s, f"re-proposal: {exc}") from None
                    await engine._finish(run, "failed", f"PR #{pr.number} no longer merges and could not be made "
                                         f"again on the new base ({exc}): escalated")
                    return "ended"
                except ManifestNotFound as exc:
                    await engine._finish(run, "failed", f"PR #{pr.number} no longer merges and the new base has no "
                                         f"place for the change ({exc}): escalated")
                    return "ended"
                await engine._record(run, "propose:opened", "succeeded", {
                    **run.steps["propose:opened"].detail, "proposed": again.model_dump(mode="json"),
                    "reproposed": int(run.steps["propose:opened"].detail.get("reproposed", 0)) + 1})
            raise Reschedule(cfg.poll_interval_s, f"PR #{pr.number} is open")
        await engine._record(run, "propose", "succeeded", {"pr": pr.model_dump(mode="json"),
                                                           "merged_at": _now().isoformat()})
        await engine._set_phase(run, "syncing")
    if "synced" not in run.steps:
        merged_at = datetime.fromisoformat(run.steps["propose"].detail["merged_at"])
        synced, seen = await port.synced(req.changes)
        if not synced:
            if _now() - merged_at < timedelta(seconds=cfg.sync_timeout_s):
                raise Reschedule(min(cfg.poll_interval_s, 5.0), "waiting for the GitOps controller to sync")
            await resume_self_heal(engine, run, "sync timeout")
            await engine._record(run, "synced", "failed", {"seen": seen})
            await engine._finish(run, "failed", f"PR #{proposed.pr.number} was merged but the cluster did not take "
                                 f"its values within {cfg.sync_timeout_s:.0f}s ({'; '.join(seen)}): escalated")
            return "ended"
        # Effectiveness: the proposed change is assessed from now (baseline at sync time), through the dry-run
        # action that stands for it; a live-and-propose workflow's live fix already has its own assessment.
        dry = run.steps.get(f"dry_run:{len(run.plan) - 1}")
        proposed_action = dry.action_id if dry is not None and "execute:0" not in run.steps else None
        await engine._record(run, "synced", "succeeded", {"seen": seen, "proposed_action_id": proposed_action})
        if proposed_action is not None and get_action(run.plan[-1].action).mutates:
            await jobs.enqueue(engine.db.pool, JobKind.ASSESS, ActionRef(action_id=proposed_action))
        await engine._set_phase(run, "verifying")
    paused = run.steps.get(PAUSE)
    if paused is not None and paused.status == "succeeded" and RESUME not in run.steps and req.gitops.tool == "argocd":
        # Argo CD syncs new commits with self-heal off: resume only once it reports the merge commit, else its
        # self-heal could put back the revision it synced before.
        merged = PullRequest.model_validate(run.steps["propose"].detail["pr"])
        merged_at = datetime.fromisoformat(run.steps["propose"].detail["merged_at"])
        if merged.merge_commit and await port.owner_revision(req.gitops) != merged.merge_commit \
                and _now() - merged_at < timedelta(seconds=cfg.sync_timeout_s):
            raise Reschedule(min(cfg.poll_interval_s, 5.0), "waiting for Argo CD to sync the merge commit")
    # Git now says what the live fix did: the owner may heal again (it keeps the synced value). Flux syncs
    # nothing while suspended: it is resumed at once and applies the merge.
    await resume_self_heal(engine, run, f"PR #{proposed.pr.number} merged and synced")
    return await _verify(engine, run, port, repo, req, proposed)


async def _verify(engine: WorkflowEngine, run: _Run, port: GitOpsPort, repo: RepositoryConfig, req: ProposalRequest,
                  proposed: Proposed) -> str:
    """As for a live action: the synced change must roll out; a failed rollout is undone by a revert PR."""
    synced_at = run.steps["synced"].finished_at or _now()
    deadline = synced_at + timedelta(seconds=engine.cfg.verify_timeout_s)
    checks: list[str] = []
    pending = False
    for kind, name, ns in dict.fromkeys((c.kind, c.name, c.namespace) for c in req.changes):
        done, text = await port.rollout(kind, name, ns)
        checks.append(f"{kind}/{name}: {text}")
        if done is False:
            return await _revert(engine, run, port, repo, proposed, f"{kind}/{name}: {text}")
        pending = pending or done is None
    if pending:
        if _now() < deadline:
            raise Reschedule(engine.cfg.verify_interval_s, "waiting for the rollout of the synced change")
        return await _revert(engine, run, port, repo, proposed,
                             f"not rolled out within {engine.cfg.verify_timeout_s:.0f}s ({'; '.join(checks)})")
    await engine._record(run, "verify:gitops", "succeeded", {"checks": checks})
    seen = run.steps["synced"].detail.get("seen") or []
    await engine._finish(run, "completed", f"proposed in PR #{proposed.pr.number}, merged, synced and verified: "
                         + "; ".join([*seen, *checks]))
    return "ended"


async def _revert(engine: WorkflowEngine, run: _Run, port: GitOpsPort, repo: RepositoryConfig, proposed: Proposed,
                  why: str) -> str:
    """Rollback of a proposed change is a revert in Git (a PR), never a live inverse."""
    await engine._record(run, "verify:gitops", "failed", {"reason": why})
    merged = PullRequest.model_validate(run.steps["propose"].detail["pr"])
    try:
        pr = await port.revert(repo, proposed.model_copy(update={"pr": merged}), f"Kubernaut: verification of "
                               f"PR #{merged.number} failed after the sync: {why}")
    except (ForgeError, GitError) as exc:
        await engine._finish(run, "failed", f"verification failed ({why}) and the revert PR could not be opened "
                             f"({exc}): escalated")
        return "ended"
    await engine._record(run, "rollback:gitops", "succeeded", {"pr": pr.model_dump(mode="json")})
    await engine._finish(run, "rolled_back", f"verification failed ({why}); revert PR #{pr.number} ({pr.url}) "
                         "opened: escalated to a human to merge it")
    return "ended"


async def reverted_live(engine: WorkflowEngine, run: _Run, planned: PlanStep, executed: Any,
                        detail: dict[str, Any]) -> dict[str, Any]:
    """A live change on a GitOps-managed target whose verification failed: did the controller put Git's state
    back? Then it is ``reverted_by_gitops`` (the engine ends the workflow saying the fix belongs in Git), not a
    failed fix to roll back. The effectiveness assessment says the same later; this sees it at verify time."""
    gitops = run.steps.get("gitops")
    if engine.gitops is None or gitops is None or executed.finished_at is None or not gitops.detail.get("gitops"):
        return detail
    who = await engine.gitops.reverted_by(planned.target.kind, planned.target.name, planned.target.namespace,
                                          executed.finished_at)
    if who is None:
        return detail
    return {**detail, "reverted_by_gitops": True, "reason": f"{who}; {detail.get('reason', '')}".rstrip("; ")}


# --- live-and-propose: the owner's self-heal paused for the live fix, resumed once Git has it ------------------

PAUSE, RESUME = "gitops:pause", "gitops:resume"


def owner_target(info: GitOpsInfo) -> ResourceRef | None:
    """The object whose self-heal reverts live drift: the Argo CD Application, the Flux Kustomization or
    HelmRelease (Helm alone has no controller that heals)."""
    if info.tool == "helm" or not info.app or not info.app_namespace:
        return None
    kind = "Application" if info.tool == "argocd" else \
        "HelmRelease" if _flux_helm(info) else "Kustomization"
    return ResourceRef(kind=kind, name=info.app, namespace=info.app_namespace)


def _flux_helm(info: GitOpsInfo) -> bool:
    return "helm.toolkit.fluxcd.io" in info.via or "HelmRelease" in info.via


def pause_target(engine: WorkflowEngine, run: _Run, info: GitOpsInfo) -> tuple[ResourceRef, dict[str, Any]] | None:
    """What pause_gitops_self_heal acts on, with its parameters. A Flux Kustomization (gitops.flux_pause
    ``object``, the default): only the object the change edits, with Flux's per-object annotation, so the
    Kustomization goes on applying everything else; else (or for several objects) the owner itself."""
    if info.tool == "flux" and not _flux_helm(info) and engine.config.gitops.flux_pause == "object":
        opened = run.steps.get("propose:opened")
        changes = [FieldChange.model_validate(c) for c in
                   ((opened.detail.get("request") or {}).get("changes") or [] if opened is not None else [])]
        objects = list(dict.fromkeys((c.kind, c.name, c.namespace) for c in changes))
        if len(objects) == 1:
            kind, name, namespace = objects[0]
            target, parameters = ResourceRef(kind=kind, name=name, namespace=namespace), {"scope": "object"}
            try:  # the catalog says which kinds the per-object pause takes
                get_action("pause_gitops_self_heal").validate(target, parameters)
                return target, parameters
            except CatalogError:
                pass
    owner = owner_target(info)
    return (owner, {}) if owner is not None else None


async def pause_self_heal(engine: WorkflowEngine, run: _Run, detail: dict[str, Any]) -> bool:
    """Before the live fix of live-and-propose: pause the owner's self-heal through the action catalog (dry-run,
    then the change). False when it could not be paused: the live fix would be reverted at once, so the workflow
    goes on as ``propose`` (the PR only)."""
    if PAUSE in run.steps:
        return run.steps[PAUSE].status == "succeeded"
    info = GitOpsInfo.model_validate(detail["gitops"])
    if info.self_heal is False:
        await engine._record(run, PAUSE, "skipped", {"reason": f"{info.tool} {info.app} does not self-heal"})
        return True
    paused = pause_target(engine, run, info)
    if paused is None:
        await engine._record(run, PAUSE, "skipped", {"reason": f"{info.tool} has no self-heal to pause"})
        return True
    target, parameters = paused
    step = PlanStep(action="pause_gitops_self_heal", target=target, parameters=parameters,
                    purpose="keep the live fix until its change in Git is merged")
    if f"dry_run:{PAUSE}" not in run.steps:
        dry = await engine._call(run, f"dry_run:{PAUSE}", step, dry_run=True)
        if dry.status not in ("dry_run", "succeeded"):
            await engine._record(run, PAUSE, "failed", {"error": dry.error or dry.message, "dry_run": True})
            return False
    result = await engine._call(run, PAUSE, step, dry_run=False)
    if result.status != "succeeded":
        await engine._record(run, PAUSE, "failed", result.model_dump(mode="json"), action_id=result.action_id,
                             kind="action")
        return False
    await engine._record(run, PAUSE, "succeeded", {**run.steps[PAUSE].detail, "paused_at": _now().isoformat()},
                         action_id=result.action_id, kind="action")
    return True


async def resume_self_heal(engine: WorkflowEngine, run: _Run, why: str) -> None:
    """The recorded inverse of the pause, once (merged and synced, closed, timed out, or the live fix undone).
    A failed resume does not stop the workflow: it is recorded, and the completion names it for a human."""
    paused = run.steps.get(PAUSE)
    if paused is None or paused.status != "succeeded" or RESUME in run.steps or not paused.detail.get("inverse"):
        return
    inverse = PlanStep.model_validate(paused.detail["inverse"])
    result = await engine._call(run, RESUME, inverse.model_copy(update={"purpose": why}), dry_run=False)
    if result.status != "succeeded":
        await engine._record(run, RESUME, "failed", {**result.model_dump(mode="json"), "why": why},
                             action_id=result.action_id, kind="action")


async def follow_after_live(engine: WorkflowEngine, run: _Run) -> str:
    """live-and-propose after the live fix is verified: follow the PR as in propose mode; self-heal comes back
    when it is merged and synced, closed, or after ``gitops.self_heal_pause_s``."""
    port = engine.gitops
    opened = run.steps.get("propose:opened")
    if port is None or opened is None:
        return "live"
    info = GitOpsInfo.model_validate(opened.detail["request"]["gitops"])
    repo = port.repository(info)
    if repo is None:
        return "live"
    paused = run.steps.get(PAUSE)
    if paused is not None and paused.status == "succeeded" and RESUME not in run.steps:
        since = datetime.fromisoformat(paused.detail.get("paused_at") or opened.detail["opened_at"])
        if _now() - since > timedelta(seconds=engine.config.gitops.self_heal_pause_s):
            await resume_self_heal(engine, run, f"paused longer than gitops.self_heal_pause_s "
                                   f"({engine.config.gitops.self_heal_pause_s:.0f}s) with the PR not merged")
    if "propose" not in run.steps:
        await engine._set_phase(run, "proposed")
    req = ProposalRequest.model_validate(opened.detail["request"])
    return await _follow(engine, run, port, repo, req, Proposed.model_validate(opened.detail["proposed"]))
