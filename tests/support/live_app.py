"""Kubernaut applications of their own on the session's Ray cluster, each with a new database: any configuration
(``kubernaut_application``), or live, as the executor's RBAC identity (``live_application``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from tests.support.polling import eventually

#: Whether the app at a base URL is ready, asked with a client of the caller's headers.
Probe = Callable[[httpx.AsyncClient, str], Awaitable[bool]]


async def fresh_database(pg_dsn: str, prefix: str) -> str:
    """A new, empty database on the session's PostgreSQL; its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, query = pg_dsn.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}?{query}"


async def answers_ready(client: httpx.AsyncClient, base: str) -> bool:
    try:
        return (await client.get(f"{base}/ready")).status_code == 200
    except httpx.HTTPError:
        return False


async def deploy_application(serve_app: Any, name: str, args: dict[str, Any], ready: Probe = answers_ready,
                             headers: dict[str, str] | None = None, timeout: float = 180) -> str:
    """Runs ``kubernaut.app`` configured by ``args`` under ``/<name>`` (a second call re-deploys it: Serve updates
    the app in place); returns its base URL once ``ready`` holds. Deletes nothing: see kubernaut_application."""
    from ray import serve

    from kubernaut.app import build_app
    from kubernaut.config import load_config

    config = load_config({"cluster_name": name, **args})
    await asyncio.to_thread(serve.run, build_app(config), name=name, route_prefix=f"/{name}", blocking=False)
    base = f"{serve_app.base_url}/{name}"
    async with httpx.AsyncClient(timeout=5, headers=headers) as client:
        async def probe() -> bool:
            return await ready(client, base)

        await eventually(probe, timeout=timeout, what=f"{name} app ready")
    return base


@asynccontextmanager
async def kubernaut_application(serve_app: Any, name: str, args: dict[str, Any], **kwargs: Any
                                ) -> AsyncIterator[str]:
    """``deploy_application`` (same arguments); yields its base URL and deletes the app after, ready or not."""
    from ray import serve

    try:
        yield await deploy_application(serve_app, name, args, **kwargs)
    finally:
        await asyncio.to_thread(serve.delete, name)


@asynccontextmanager
async def live_application(serve_app: Any, name: str, dsn: str, executor_kubeconfig: str,
                           **overrides: Any) -> AsyncIterator[str]:
    """Runs ``kubernaut.app`` under ``/<name>`` with execution live; yields its base URL, deletes it after."""
    args = {"storage": {"dsn": dsn}, "kubernetes": {"kubeconfig": executor_kubeconfig},
            **overrides, "execution": {"mode": "live", **overrides.get("execution", {})}}
    async with kubernaut_application(serve_app, name, args) as base:
        yield base
