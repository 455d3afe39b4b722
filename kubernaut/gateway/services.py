"""What the gateway's routes work with: configuration, storage, the other deployments, auth and limits.

The Serve replica builds one :class:`GatewayServices` and installs it; the route modules
(:mod:`kubernaut.gateway.routes`) receive it through FastAPI's dependency injection, so each of them is a
plain function of its inputs and the Serve class stays a shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from ray.serve.handle import DeploymentHandle

from kubernaut.config.settings import KubernautConfig
from kubernaut.gateway.auth import TokenVerifier
from kubernaut.gateway.ingest import WebhookIngest
from kubernaut.gateway.ratelimit import RateLimiter
from kubernaut.models.jobs import consumer_of
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
    auth: TokenVerifier
    deployments: Deployments
    ingest: WebhookIngest
    # /analyze has a bucket of its own per sender: heavy analysis use must not eat its webhook budget.
    analyze_limiter: RateLimiter

    def authorize(self, request: Request) -> None:
        """Every ``/api/v1/*`` read needs a valid token when tokens are configured."""
        if not self.auth.verify(request.headers.get("authorization")):
            raise HTTPException(status_code=401, detail="unauthorized")


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
