"""What the gateway's routes work with: configuration, storage, the other deployments, identity and limits.

The Serve replica builds one :class:`GatewayServices` and installs it; the route modules
(:mod:`kubernaut.gateway.routes`) receive it through FastAPI's dependency injection, so each of them is a
plain function of its inputs and the Serve class stays a shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from ray.serve.handle import DeploymentHandle

from kubernaut.config.settings import KubernautConfig
from kubernaut.gateway.ingest import WebhookIngest
from kubernaut.gateway.ratelimit import RateLimiter
from kubernaut.identity.chain import AuthChain, Denied
from kubernaut.models.jobs import consumer_of
from kubernaut.models.principal import Permission, Principal
from kubernaut.storage.database import Database


@dataclass(frozen=True)
class Deployments:
    """Handles of the deployments the gateway's REST API fronts."""

    processor: DeploymentHandle
    analysis: DeploymentHandle
    executor: DeploymentHandle
    context: DeploymentHandle
    intelligence: DeploymentHandle
    effectiveness: DeploymentHandle
    orchestrator: DeploymentHandle

    def consumer_of(self, job_kind: str) -> DeploymentHandle | None:
        """The deployment that claims jobs of ``job_kind`` (kubernaut.models.jobs); None for an undeclared kind or
        a consumer the gateway holds no handle of."""
        name = consumer_of(job_kind)
        return getattr(self, name, None) if name is not None else None


@dataclass(frozen=True)
class GatewayServices:
    config: KubernautConfig
    db: Database
    auth: AuthChain
    deployments: Deployments
    ingest: WebhookIngest
    # /analyze has a bucket of its own per sender: heavy analysis use must not eat its webhook budget.
    analyze_limiter: RateLimiter

    async def authorize(self, request: Request, permission: Permission) -> Principal:
        """The caller, if it holds ``permission``; else 401/403/503 (:class:`kubernaut.identity.chain.Denied`)."""
        try:
            return await self.auth.require(request.headers.get("authorization"), permission)
        except Denied as exc:
            raise HTTPException(status_code=exc.status, detail=exc.message, headers=exc.headers) from None

    async def check(self, principal: Principal, permission: Permission) -> None:
        """403/503 unless the authenticated ``principal`` holds ``permission``."""
        try:
            await self.auth.authorize(principal, permission)
        except Denied as exc:
            raise HTTPException(status_code=exc.status, detail=exc.message, headers=exc.headers) from None


_installed: GatewayServices | None = None


def install(services: GatewayServices) -> None:
    """Called by the gateway replica once it is ready (one replica per process)."""
    global _installed
    _installed = services


def services() -> GatewayServices:
    """FastAPI dependency: this replica's services (503 while the replica is still starting)."""
    if _installed is None:
        raise HTTPException(status_code=503, detail="gateway starting")
    return _installed


#: A route parameter that receives this replica's services.
Services = Annotated[GatewayServices, Depends(services)]


def requires(verb: str, resource: str) -> Any:
    """A route parameter type: the caller, who must hold ``verb`` on ``resource`` (cluster-wide). The check runs
    before the query and body are validated, so an unauthenticated caller learns nothing from 422s."""
    permission = Permission(verb=verb, resource=resource)

    async def dependency(request: Request, svc: Services) -> Principal:
        return await svc.authorize(request, permission)

    dependency.permission = permission  # type: ignore[attr-defined]  # read by tests/gateway/test_identity.py
    return Annotated[Principal, Depends(dependency)]


async def _authenticated(request: Request, svc: Services) -> Principal:
    try:
        return await svc.auth.authenticate(request.headers.get("authorization"))
    except Denied as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message, headers=exc.headers) from None


#: A route parameter that receives the authenticated caller, for routes whose permission depends on the object
#: (its namespace): the route checks it with :meth:`GatewayServices.check` once it knows the object.
Authenticated = Annotated[Principal, Depends(_authenticated)]
