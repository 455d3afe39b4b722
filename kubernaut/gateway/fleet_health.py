"""The fleet on ``/ready``: whether every cluster's API server answers the executor (its circuit per cluster).

Probes carry no credentials, so an anonymous caller learns only ``clusters: ok | degraded``; a caller who may
list incidents also gets which clusters are degraded and when they are tried again (``cluster_detail``).
A degraded cluster never makes Kubernaut unready: only that cluster's incidents wait.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernaut.gateway.services import GatewayServices
from kubernaut.identity.chain import Denied
from kubernaut.models.principal import Permission


async def fleet_health(svc: GatewayServices, authorization: str | None) -> dict[str, Any]:
    if not svc.config.fleet.clusters:
        return {}
    try:
        status = await asyncio.wait_for(svc.deployments.executor.status.remote(), timeout=2)
    except Exception:
        return {"clusters": "unknown"}
    clusters: dict[str, Any] = status.get("clusters") or {}
    degraded = {name: c for name, c in sorted(clusters.items())
                if (c.get("circuit") or {}).get("state") != "closed" or c.get("cluster") == "none"}
    body: dict[str, Any] = {"clusters": "degraded" if degraded else "ok"}
    if not degraded:
        return body
    try:
        await svc.auth.require(authorization, Permission(verb="list", resource="incidents"))
    except Denied:
        return body
    body["cluster_detail"] = {name: {"circuit": (c.get("circuit") or {}).get("state"),
                                     "retry_in_s": (c.get("circuit") or {}).get("retry_in_s"),
                                     "credentials": "missing" if c.get("cluster") == "none" else "loaded"}
                              for name, c in degraded.items()}
    return body
