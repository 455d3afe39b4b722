"""The system page's facts: the Serve application's deployments and replicas, execution mode, the LLM."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernaut.gateway.services import GatewayServices


def _serve_deployments(app_name: str | None) -> list[dict[str, Any]]:
    """Deployments of this application with their status and replica states, as Serve's controller reports
    them (``serve.status()``, a blocking call: run in a thread)."""
    from ray import serve

    status = serve.status()
    rows = []
    for name, app in status.applications.items():
        if app_name is not None and name != app_name:
            continue
        for dep_name, dep in app.deployments.items():
            states = {str(getattr(k, "value", k)): v for k, v in (dep.replica_states or {}).items()}
            rows.append({"application": name, "name": dep_name, "status": str(getattr(dep.status, "value", dep.status)),
                         "replicas": states, "running": states.get("RUNNING", 0), "message": dep.message or ""})
    return rows


def _app_name() -> str | None:
    try:
        from ray import serve

        return serve.get_replica_context().app_name
    except Exception:
        return None


async def _bounded(call: Any, timeout: float = 5) -> Any:
    try:
        return await asyncio.wait_for(call, timeout=timeout)
    except Exception as exc:
        return {"error": type(exc).__name__}


async def system_status(svc: GatewayServices) -> dict[str, Any]:
    cfg = svc.config
    try:
        deployments: list[dict[str, Any]] | None = await asyncio.wait_for(
            asyncio.to_thread(_serve_deployments, _app_name()), timeout=5)
        serve_error = None
    except Exception as exc:
        deployments, serve_error = None, type(exc).__name__
    return {
        "execution_mode": cfg.execution.mode.value,
        "executor": await _bounded(svc.deployments.executor.status.remote()),
        "llm": await _bounded(svc.deployments.analysis.llm_status.remote()),
        "deployments": deployments, "serve_error": serve_error,
        "ray_dashboard_url": cfg.console.ray_dashboard_url,
        "storage_kind": svc.db.dsn_kind,
        "auth_methods": list(svc.auth.methods), "anonymous": svc.auth.anonymous is not None,
        "notification_urls": len(cfg.notifications.urls),
    }
