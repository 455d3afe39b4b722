"""The gateway's REST API, one module per resource; :data:`ROUTERS` in the order the OpenAPI document lists them."""

from __future__ import annotations

from fastapi import APIRouter

from kubernaut.gateway.routes import (
    analysis,
    approvals,
    audit,
    catalog,
    incidents,
    jobs,
    learning,
    operations,
    slack,
    webhook,
)

ROUTERS: tuple[APIRouter, ...] = (webhook.router, incidents.router, catalog.router, analysis.router, learning.router,
                                  approvals.router, slack.router, jobs.router, audit.router, operations.router)
