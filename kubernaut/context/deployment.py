"""Context API: what is known about a resource — its live state and its incident history."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException
from ray import serve

from kubernaut.cluster.client import ClusterConnection, connect
from kubernaut.config.settings import KubernautConfig
from kubernaut.models.resource import ResourceRef
from kubernaut.serving import ReplicaBase

logger = logging.getLogger(__name__)

# kind → (api_version, plural) for the objects incidents are about.
_KINDS: dict[str, tuple[str, str]] = {
    "Pod": ("v1", "pods"), "Node": ("v1", "nodes"), "PersistentVolumeClaim": ("v1", "persistentvolumeclaims"),
    "Namespace": ("v1", "namespaces"), "Deployment": ("apps/v1", "deployments"),
    "StatefulSet": ("apps/v1", "statefulsets"), "DaemonSet": ("apps/v1", "daemonsets"),
    "ReplicaSet": ("apps/v1", "replicasets"), "Job": ("batch/v1", "jobs"),
}


@serve.deployment(name="context")
class ContextService(ReplicaBase):
    service_name = "context"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)
        self._cluster: ClusterConnection = await asyncio.to_thread(connect, config.kubernetes)

    async def get_context(self, target: ResourceRef, history_limit: int = 10) -> dict[str, Any]:
        history = await self.db.pool.fetch(
            """SELECT i.id, i.status, i.phase, i.signals, i.first_seen, i.last_seen, i.occurrence_count,
                      a.action, a.engine, a.confidence, x.status AS action_status
               FROM incidents i
               LEFT JOIN LATERAL (SELECT * FROM analyses WHERE incident_id = i.id ORDER BY id DESC LIMIT 1) a ON true
               LEFT JOIN LATERAL (SELECT * FROM actions WHERE incident_id = i.id ORDER BY id DESC LIMIT 1) x ON true
               WHERE i.target_kind = $1 AND i.target_name = $2 AND i.target_namespace IS NOT DISTINCT FROM $3
               ORDER BY i.id DESC LIMIT $4""",
            target.kind, target.name, target.namespace, history_limit,
        )
        return {
            "target": target.model_dump(),
            "live": await self._live_state(target),
            "history": [dict(r) for r in history],
        }

    async def _live_state(self, target: ResourceRef) -> dict[str, Any]:
        if not self._cluster.available:
            return {"available": False, "reason": self._cluster.reason}
        if target.kind not in _KINDS:
            return {"available": False, "reason": f"kind {target.kind} has no live view"}
        api_version, plural = _KINDS[target.kind]
        return await asyncio.to_thread(self._fetch, api_version, plural, target)

    def _fetch(self, api_version: str, plural: str, target: ResourceRef) -> dict[str, Any]:
        group, _, version = api_version.rpartition("/")
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        ns = f"/namespaces/{target.namespace}" if target.namespace and target.kind not in ("Node", "Namespace") else ""
        path = f"{prefix}{ns}/{plural}/{target.name}"
        try:
            data = self._cluster.api_client.call_api(
                path, "GET", response_type="object", auth_settings=["BearerToken"], _return_http_data_only=True,
                _request_timeout=self.config.kubernetes.request_timeout_s,
            )
        except ApiException as exc:
            return {"available": False, "reason": f"API answered {exc.status} {exc.reason}"}
        except Exception as exc:
            return {"available": False, "reason": f"API unreachable: {type(exc).__name__}"}
        return {"available": True, "metadata": _slim_metadata(data.get("metadata", {})), "status": data.get("status")}


def _slim_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    keep = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "labels",
            "ownerReferences")
    return {k: metadata[k] for k in keep if k in metadata}
