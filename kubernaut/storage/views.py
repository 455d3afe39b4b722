"""Read models for the API: an incident with everything that happened to it."""

from __future__ import annotations

from typing import Any

import asyncpg

_INCIDENT_COLUMNS = """id, fingerprint, status, phase, signals, severity, environment, priority, classification,
    occurrence_count, firing_alerts, first_seen, last_seen, resolved_at, created_at, updated_at,
    json_build_object('kind', target_kind, 'name', target_name, 'namespace', target_namespace) AS target,
    target_source, target_chain, cluster"""


async def list_incidents(
    pool: asyncpg.Pool, *, status: str | None, namespace: str | None, limit: int, offset: int,
    phase: str | None = None, severity: str | None = None, text: str | None = None,
    cluster: str | None = None
) -> list[dict[str, Any]]:
    """Newest first. ``text`` (the console's search) matches, case-insensitively, a part of the target's name,
    kind or namespace or of an alert name (plain text, no wildcards)."""
    rows = await pool.fetch(
        f"""SELECT {_INCIDENT_COLUMNS},
                   (SELECT json_build_object('action', a.action, 'engine', a.engine, 'confidence', a.confidence)
                      FROM analyses a WHERE a.incident_id = incidents.id ORDER BY a.id DESC LIMIT 1) AS analysis
            FROM incidents
            WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR target_namespace = $2)
              AND ($8::text IS NULL OR cluster = $8)
              AND ($5::text IS NULL OR phase = $5) AND ($6::text IS NULL OR severity = $6)
              AND ($7::text IS NULL OR strpos(lower(concat_ws(' ', target_kind, target_name, target_namespace,
                                                              array_to_string(signals, ' '))), lower($7)) > 0)
            ORDER BY id DESC LIMIT $3 OFFSET $4""",
        status, namespace, limit, offset, phase, severity, text, cluster,
    )
    return [dict(r) for r in rows]


# An incident of a long storm has thousands of alerts and audit events: the detail returns one page of each
# (GET /api/v1/incidents/{id}?limit=&offset=) and the totals, never everything at once.
DETAIL_PAGE = 500
DETAIL_PAGE_MAX = 5000


async def incident_detail(pool: asyncpg.Pool, incident_id: int, *, limit: int = DETAIL_PAGE, offset: int = 0
                          ) -> dict[str, Any] | None:
    """The incident with everything that happened to it; alerts, workflow steps and audit events are
    paged (``limit`` rows of each from ``offset``, oldest first) and ``page`` gives their totals."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        incident = await conn.fetchrow(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = $1", incident_id)
        if incident is None:
            return None
        alerts = await conn.fetch(
            """SELECT id, received_at, request_id, am_fingerprint, alertname, status, severity, namespace, labels,
                      annotations, starts_at, ends_at, generator_url, process_decision
               FROM alerts WHERE incident_id = $1 ORDER BY id LIMIT $2 OFFSET $3""", incident_id, limit, offset)
        analyses = await conn.fetch("SELECT * FROM analyses WHERE incident_id = $1 ORDER BY id", incident_id)
        workflows = await conn.fetch("SELECT * FROM workflows WHERE incident_id = $1 ORDER BY id", incident_id)
        steps = await conn.fetch(
            """SELECT s.* FROM workflow_steps s JOIN workflows w ON w.id = s.workflow_id
               WHERE w.incident_id = $1 ORDER BY s.workflow_id, s.seq LIMIT $2 OFFSET $3""", incident_id, limit, offset)
        actions = await conn.fetch("SELECT * FROM actions WHERE incident_id = $1 ORDER BY id", incident_id)
        notes = await conn.fetch(
            """SELECT id, event, title, body, severity, status, attempts, targets, deliveries, error, created_at,
                      sent_at FROM notifications WHERE incident_id = $1 ORDER BY id""", incident_id)
        assessments = await conn.fetch(
            """SELECT action_id, action, status, verdict, score, reasons, components, assessed_at
               FROM assessments WHERE incident_id = $1 ORDER BY id""", incident_id)
        audit = await conn.fetch(
            """SELECT id, at, actor, event, detail, hash FROM audit_events WHERE incident_id = $1
               ORDER BY id LIMIT $2 OFFSET $3""", incident_id, limit, offset)
        totals = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM alerts WHERE incident_id = $1) AS alerts,
                      (SELECT count(*) FROM workflow_steps s JOIN workflows w ON w.id = s.workflow_id
                        WHERE w.incident_id = $1) AS steps,
                      (SELECT count(*) FROM audit_events WHERE incident_id = $1) AS audit""", incident_id)
    view = dict(incident)
    view["alerts"] = [dict(r) for r in alerts]
    view["analyses"] = [dict(r) for r in analyses]
    view["analysis"] = view["analyses"][-1] if view["analyses"] else None
    workflow_list = []
    for wf in workflows:
        item = dict(wf)
        item["steps"] = [dict(s) for s in steps if s["workflow_id"] == wf["id"]]
        workflow_list.append(item)
    view["workflows"] = workflow_list
    view["workflow"] = workflow_list[-1] if workflow_list else None
    view["actions"] = [dict(r) for r in actions]
    view["notifications"] = [dict(r) for r in notes]
    view["assessments"] = [dict(r) for r in assessments]
    view["audit"] = [dict(r) for r in audit]
    view["page"] = {"limit": limit, "offset": offset, "alerts_total": totals["alerts"],
                    "steps_total": totals["steps"], "audit_total": totals["audit"]}
    return view


async def list_alerts(pool: asyncpg.Pool, *, outcome: str | None, namespace: str | None, limit: int, offset: int
                      ) -> list[dict[str, Any]]:
    """Received alerts, newest first; ``outcome``: ``rejected`` (the processor could not handle them, with the
    reason) or ``pending`` (not processed yet)."""
    rows = await pool.fetch(
        """SELECT id, received_at, request_id, am_fingerprint, alertname, status, severity, namespace, labels,
                  starts_at, ends_at, incident_id, processed_at, process_decision
           FROM alerts
           WHERE ($1::text IS NULL
                  OR ($1 = 'pending' AND processed_at IS NULL)
                  OR ($1 = 'rejected' AND processed_at IS NOT NULL AND process_decision->>'outcome' = 'rejected'))
             AND ($2::text IS NULL OR namespace = $2)
           ORDER BY id DESC LIMIT $3 OFFSET $4""",
        outcome, namespace, limit, offset,
    )
    return [dict(r) for r in rows]
