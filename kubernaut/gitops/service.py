"""The orchestrator's door to Git, the forges and the synced state: the proposal functions in worker threads,
and whether the live objects carry the values a merged change declares (read through ``ClusterAPI``)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.errors import ClusterError
from kubernaut.config.gitops import GitOpsConfig, RepositoryConfig
from kubernaut.execution.operations.objects import rollout_state  # one definition of "rolled out"
from kubernaut.gitops import proposal
from kubernaut.gitops.changes import FieldChange
from kubernaut.gitops.detect import is_controller_manager
from kubernaut.gitops.forge import PullRequest
from kubernaut.gitops.models import GitOpsInfo
from kubernaut.gitops.proposal import ProposalRequest, Proposed

_TEMPLATE = {"CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}


def live_value(obj: dict[str, Any], change: FieldChange) -> Any:
    """The live value of a change's field (None when absent)."""
    if change.container is not None:
        node: Any = obj
        for key in (*_TEMPLATE.get(change.kind, ("spec", "template", "spec")), "containers"):
            node = (node or {}).get(key) if isinstance(node, dict) else None
        container = next((c for c in node or [] if isinstance(c, dict) and c.get("name") == change.container), None)
        node = container
        for key in change.field.split(".", 2)[2].split("."):
            node = node.get(key) if isinstance(node, dict) else None
        return node
    return ((obj.get("spec") or {}).get(change.field))


def _same(live: Any, wanted: Any) -> bool:
    if wanted is None:
        return live is None
    if isinstance(wanted, bool) or isinstance(live, bool):
        return live is wanted
    return str(live) == str(wanted)


class GitOpsService:
    def __init__(self, config: GitOpsConfig, cluster: ClusterAPI | None) -> None:
        self.config = config
        self._cluster = cluster

    def repository(self, info: GitOpsInfo) -> RepositoryConfig | None:
        return proposal.find_repository(self.config, info)

    async def propose(self, repo: RepositoryConfig, req: ProposalRequest) -> Proposed:
        return await asyncio.to_thread(proposal.propose, self.config, repo, req)

    async def state(self, repo: RepositoryConfig, number: int) -> PullRequest:
        return await asyncio.to_thread(proposal.state, self.config, repo, number)

    async def repropose(self, repo: RepositoryConfig, req: ProposalRequest, proposed: Proposed) -> Proposed:
        return await asyncio.to_thread(proposal.repropose, self.config, repo, req, proposed)

    async def revert(self, repo: RepositoryConfig, proposed: Proposed, why: str) -> PullRequest:
        return await asyncio.to_thread(proposal.revert, self.config, repo, proposed, why)

    async def owner_revision(self, info: GitOpsInfo) -> str | None:
        """The commit an Argo CD Application reports it is synced to (status.sync.revision); None when unknown."""
        if self._cluster is None or info.tool != "argocd" or not info.app or not info.app_namespace:
            return None
        try:
            app = await self._cluster.get_or_none("Application", info.app, info.app_namespace)
        except ClusterError:
            return None
        revision = (((app or {}).get("status") or {}).get("sync") or {}).get("revision")
        return str(revision) if revision else None

    async def reverted_by(self, kind: str, name: str, namespace: str | None, since: datetime) -> str | None:
        """Which GitOps controller (its field manager) wrote the object at or after ``since`` (a live change's
        end): the controller put Git's state back. None when none did, or it cannot be read.

        managedFields times have whole seconds: a write in the second of the change counts."""
        if self._cluster is None:
            return None
        try:
            obj = await self._cluster.get_or_none(kind, name, namespace)
        except ClusterError:
            return None
        floor = since.replace(microsecond=0)
        for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
            manager, at = str(entry.get("manager") or ""), str(entry.get("time") or "")
            try:
                when = datetime.fromisoformat(at.replace("Z", "+00:00"))
            except ValueError:
                continue
            if is_controller_manager(manager) and when >= floor:
                return f"{manager} wrote {kind}/{name} at {at}, after the live change"
        return None

    async def revision_images(self, replicaset: str, namespace: str | None) -> dict[str, str]:
        """Container → image of a ReplicaSet's template: what rollback_deployment restores, as Git should say."""
        if self._cluster is None:
            return {}
        rs = await self._cluster.get_or_none("ReplicaSet", replicaset, namespace)
        containers = ((((rs or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        return {str(c["name"]): str(c["image"]) for c in containers if c.get("name") and c.get("image")}

    async def rollout(self, kind: str, name: str, namespace: str | None) -> tuple[bool | None, str]:
        """After the sync: has the workload rolled out the change (True), failed (False), or not yet (None)?"""
        if self._cluster is None:
            return None, "no Kubernetes access to verify the rollout"
        if kind not in ("Deployment", "StatefulSet", "DaemonSet"):
            return True, f"{kind} has no rollout"
        try:
            obj = await self._cluster.get_or_none(kind, name, namespace)
        except ClusterError as exc:
            return None, f"{kind}/{name}: {exc}"
        if obj is None:
            return False, f"{kind}/{name} is gone"
        obj.setdefault("kind", kind)
        return rollout_state(obj)

    async def synced(self, changes: list[FieldChange]) -> tuple[bool | None, list[str]]:
        """(True: every field has its Git value live; False: not yet; None: cannot tell) and what was seen."""
        if self._cluster is None:
            return None, ["no Kubernetes access to see the synced state"]
        seen, done = [], True
        for change in changes:
            try:
                obj = await self._cluster.get_or_none(change.kind, change.name, change.namespace)
            except ClusterError as exc:
                return None, [f"{change.kind}/{change.name}: {exc}"]
            if obj is None:
                return False, [f"{change.kind}/{change.name} not found"]
            value = live_value(obj, change)
            ok = _same(value, change.value)
            done = done and ok
            seen.append(f"{change.kind}/{change.name} {change.field}: live {value!r}, Git {change.value!r}")
        return done, seen
