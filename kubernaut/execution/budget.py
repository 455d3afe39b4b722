"""Blast-radius budget and cooldown: how much the executor may change, how fast, and how often.

Both are answered from the action records in PostgreSQL, so every replica sees the same numbers.
A budget admission is a reservation (the record is marked ``mutating``) taken under a transaction
lock, so two replicas cannot both take the last slot; a mutation that never happens (a precondition
refused it) gives its slot back.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from kubernaut.config.settings import ExecutionConfig

_BUDGET_LOCK = 0x4B4E_4255_4447  # serializes admissions across replicas
# Actions that take a node out of scheduling; their count is capped by max_nodes_unavailable.
NODE_OUTAGE_ACTIONS = frozenset({"cordon_node", "drain_node"})


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    usage: dict[str, int]


async def cooldown_left(pool: asyncpg.Pool, target_key: str, action: str, cooldown_s: float) -> float:
    """Seconds until (target, action) may run again; 0 when it may run now.

    Counts live executions that got as far as mutating (succeeded or failed): a failed attempt
    changed something or tried to, and repeating it at once is exactly the oscillation to avoid.
    """
    if cooldown_s <= 0:
        return 0.0
    left = await pool.fetchval(
        """SELECT EXTRACT(EPOCH FROM max(finished_at) + make_interval(secs => $3) - now())
           FROM actions WHERE target_key = $1 AND action = $2 AND NOT dry_run AND mutating
             AND status IN ('succeeded', 'failed')""",
        target_key, action, cooldown_s,
    )
    return max(0.0, float(left)) if left is not None else 0.0


async def admit(
    pool: asyncpg.Pool,
    action_id: int,
    *,
    action: str,
    target_key: str,
    namespace: str | None,
    config: ExecutionConfig,
    unavailable_nodes: set[str] | None = None,
    node: str | None = None,
    reserve: bool = True,
) -> Verdict:
    """Admit one live mutation, or say which budget it would exceed.

    ``unavailable_nodes`` are the nodes the cluster shows unschedulable right now (cordoned by
    anyone); node actions in flight elsewhere are added from the records, since their cordon may not
    be visible yet. With ``reserve=False`` (dry-run mode) it only answers.
    """
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _BUDGET_LOCK)
        window = config.budget_window_s
        total = await conn.fetchval(
            "SELECT count(*) FROM actions WHERE mutating AND id <> $1 "
            "AND started_at > now() - make_interval(secs => $2)",
            action_id, window,
        )
        usage = {"mutations_in_window": int(total)}
        if total >= config.max_mutations_per_window:
            return Verdict(False, (
                f"blast-radius budget: {total} live mutations in the last {window:.0f}s reached the limit "
                f"execution.max_mutations_per_window={config.max_mutations_per_window}; retry when the window moves"
            ), usage)
        if namespace is not None:
            in_ns = await conn.fetchval(
                "SELECT count(*) FROM actions WHERE mutating AND id <> $1 AND namespace = $2 "
                "AND started_at > now() - make_interval(secs => $3)",
                action_id, namespace, window,
            )
            usage["mutations_in_namespace"] = int(in_ns)
            if in_ns >= config.max_mutations_per_namespace:
                return Verdict(False, (
                    f"blast-radius budget: {in_ns} live mutations in namespace {namespace} in the last {window:.0f}s "
                    f"reached execution.max_mutations_per_namespace={config.max_mutations_per_namespace}"
                ), usage)
        if action in NODE_OUTAGE_ACTIONS and node is not None:
            in_flight = await conn.fetch(
                "SELECT target ->> 'name' AS node FROM actions WHERE status = 'running' AND mutating AND id <> $1 "
                "AND action = ANY($2::text[])",
                action_id, list(NODE_OUTAGE_ACTIONS),
            )
            out = (set(unavailable_nodes or ()) | {r["node"] for r in in_flight}) - {node}
            usage["nodes_unavailable"] = len(out)
            if len(out) >= config.max_nodes_unavailable:
                return Verdict(False, (
                    f"blast-radius budget: {len(out)} node(s) already unschedulable or being drained "
                    f"({', '.join(sorted(out)[:10])}); execution.max_nodes_unavailable={config.max_nodes_unavailable}"
                ), usage)
        if reserve:
            await conn.execute("UPDATE actions SET mutating = true, started_at = now() WHERE id = $1", action_id)
    return Verdict(True, "within budget", usage)


async def give_back(pool: asyncpg.Pool, action_id: int) -> None:
    """The admitted mutation did not happen (refused before any write): return its slot."""
    await pool.execute("UPDATE actions SET mutating = false WHERE id = $1 AND status = 'running'", action_id)


async def usage(pool: asyncpg.Pool, config: ExecutionConfig) -> dict[str, int]:
    total = await pool.fetchval(
        "SELECT count(*) FROM actions WHERE mutating AND started_at > now() - make_interval(secs => $1)",
        config.budget_window_s,
    )
    return {"mutations_in_window": int(total), "max_mutations_per_window": config.max_mutations_per_window}
