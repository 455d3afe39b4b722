"""Who watches each cluster's Warning events (``processing.events``), for ``/api/v1/info``: the lease of each
cluster (kubernaut.processing.watch_ownership). Holders name hosts and processes, so only a caller who may
``get leases`` (admins) sees them; nothing is added when the event source is off."""

from __future__ import annotations

from typing import Any

from kubernaut.gateway.services import GatewayServices
from kubernaut.identity.chain import Denied
from kubernaut.models.principal import Permission
from kubernaut.storage import watch_leases


async def event_watch_info(svc: GatewayServices, authorization: str | None) -> dict[str, Any]:
    if not svc.config.processing.events.enabled:
        return {}
    try:
        await svc.auth.require(authorization, Permission(verb="get", resource="leases"))
    except Denied:
        return {}
    leases = {lease.cluster: lease for lease in await watch_leases.leases(svc.db.pool) if lease.live}
    return {"event_watch": {c.name: _owner(leases.get(c.name)) for c in svc.config.clusters()}}


def _owner(lease: watch_leases.WatchLease | None) -> dict[str, Any]:
    """The replica watching one cluster now (owner None: nobody, e.g. between a crash and the takeover)."""
    if lease is None:
        return {"owner": None, "since": None, "expires_at": None}
    return {"owner": lease.holder, "since": lease.acquired_at.isoformat() if lease.acquired_at else None,
            "expires_at": lease.expires_at.isoformat()}
