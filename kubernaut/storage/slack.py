"""The Slack app's state: one thread per incident and channel, the message of each approval (updated in place),
and the interactions already accepted (a replayed request is refused)."""

from __future__ import annotations

import asyncpg

#: Slack's replay window is 5 minutes; an accepted signature is kept a little longer, then pruned.
_KEEP_INTERACTIONS_S = 600


async def thread_of(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int, channel: str) -> str | None:
    return await conn.fetchval("SELECT ts FROM slack_threads WHERE incident_id = $1 AND channel = $2",
                               incident_id, channel)


async def save_thread(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int, channel: str, ts: str) -> str:
    """Make ``ts`` the incident's thread in ``channel`` unless another message got there first; returns the
    thread's ts."""
    await conn.execute("""INSERT INTO slack_threads (incident_id, channel, ts) VALUES ($1, $2, $3)
                          ON CONFLICT (incident_id, channel) DO NOTHING""", incident_id, channel, ts)
    return await thread_of(conn, incident_id, channel) or ts


async def save_approval_message(conn: asyncpg.Connection | asyncpg.Pool, approval_id: int, channel: str,
                                ts: str) -> None:
    await conn.execute("""INSERT INTO slack_approval_messages (approval_id, channel, ts) VALUES ($1, $2, $3)
                          ON CONFLICT (approval_id, channel) DO UPDATE SET ts = $3""", approval_id, channel, ts)


async def approval_messages(conn: asyncpg.Connection | asyncpg.Pool, approval_id: int) -> list[tuple[str, str]]:
    """(channel, ts) of every Slack message that asked for this approval."""
    rows = await conn.fetch("SELECT channel, ts FROM slack_approval_messages WHERE approval_id = $1 ORDER BY channel",
                            approval_id)
    return [(r["channel"], r["ts"]) for r in rows]


async def accept_interaction(conn: asyncpg.Connection | asyncpg.Pool, digest: str) -> bool:
    """False when this signed request was accepted before (a replay)."""
    await conn.execute("DELETE FROM slack_interactions WHERE received_at < now() - make_interval(secs => $1)",
                       float(_KEEP_INTERACTIONS_S))
    row = await conn.fetchrow("INSERT INTO slack_interactions (digest) VALUES ($1) ON CONFLICT DO NOTHING "
                              "RETURNING digest", digest)
    return row is not None


async def expired_approval_messages(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int
                                    ) -> list[tuple[int, str, str]]:
    """(approval id, channel, ts) of the Slack messages of an incident's expired approvals."""
    rows = await conn.fetch(
        """SELECT m.approval_id, m.channel, m.ts FROM slack_approval_messages m
           JOIN approvals a ON a.id = m.approval_id
           WHERE a.incident_id = $1 AND a.status = 'expired' ORDER BY m.approval_id, m.channel""", incident_id)
    return [(r["approval_id"], r["channel"], r["ts"]) for r in rows]
