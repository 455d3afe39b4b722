"""A second Kubernaut application on the session's Ray cluster, live, as the executor's RBAC identity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.support.polling import eventually


@asynccontextmanager
async def live_application(serve_app: Any, name: str, dsn: str, executor_kubeconfig: str,
                           **overrides: Any) -> AsyncIterator[str]:
    """Runs ``kubernaut.app`` under ``/<name>`` with execution live; yields its base URL, deletes it after."""
    from ray import serve

    from kubernaut.app import build_app
    from kubernaut.config import load_config

    config = load_config({
        "cluster_name": name, "storage": {"dsn": dsn}, "kubernetes": {"kubeconfig": executor_kubeconfig},
        **overrides, "execution": {"mode": "live", **overrides.get("execution", {})},
    })
    await asyncio.to_thread(serve.run, build_app(config), name=name, route_prefix=f"/{name}", blocking=False)
    base = f"{serve_app.base_url}/{name}"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            async def ready() -> bool:
                try:
                    return (await client.get(f"{base}/ready")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=180, what=f"{name} app ready")
        yield base
    finally:
        await asyncio.to_thread(serve.delete, name)
