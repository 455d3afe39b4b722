"""What the orchestrator reads of an analysis's GitOps facts (``gitops.*`` in ``analyses.facts``, written by the
analysis from the incident context): who owns the target's desired state."""

from __future__ import annotations

from typing import Any

import asyncpg

Connection = asyncpg.Connection | asyncpg.Pool


async def owner_facts(conn: Connection, analysis_id: int) -> dict[str, Any]:
    """``{tool, app, app_namespace, repo, path, revision, auto_sync, self_heal, value_files}`` (the ``gitops.``
    prefix dropped), or {} when the analysis recorded no owner."""
    facts = await conn.fetchval("SELECT facts FROM analyses WHERE id = $1", analysis_id)
    out = {k.removeprefix("gitops."): v for k, v in (facts or {}).items() if k.startswith("gitops.")}
    return out if out.get("tool") else {}
