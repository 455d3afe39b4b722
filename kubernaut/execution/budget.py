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
from kubernaut.storage import execution as records

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
    return await records.cooldown_left(pool, target_key, action, cooldown_s)


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
    cluster: str | None = None,
) -> Verdict:
    """Admit one live mutation, or say which budget it would exceed.

    ``unavailable_nodes`` are the nodes the cluster shows unschedulable right now (cordoned by
    anyone); node actions in flight elsewhere are added from the records, since their cordon may not
    be visible yet. With ``reserve=False`` (dry-run mode) it only answers.
    """
    async with pool.acquire() as conn, conn.transaction():
        await records.lock_budget(conn)
        window = config.budget_window_s
        total = await records.mutations_since(conn, window, except_id=action_id, cluster=cluster)
        usage = {"mutations_in_window": total}
        if total >= config.max_mutations_per_window:
            return Verdict(False, (
                f"blast-radius budget: {total} live mutations in the last {window:.0f}s reached the limit "
                f"execution.max_mutations_per_window={config.max_mutations_per_window}; retry when the window moves"
            ), usage)
        if namespace is not None:
            in_ns = await records.mutations_since(conn, window, except_id=action_id, namespace=namespace,
                                                  cluster=cluster)
            usage["mutations_in_namespace"] = in_ns
            if in_ns >= config.max_mutations_per_namespace:
                return Verdict(False, (
                    f"blast-radius budget: {in_ns} live mutations in namespace {namespace} in the last {window:.0f}s "
                    f"reached execution.max_mutations_per_namespace={config.max_mutations_per_namespace}"
                ), usage)
        if action in NODE_OUTAGE_ACTIONS and node is not None:
            in_flight = await records.nodes_in_flight(conn, sorted(NODE_OUTAGE_ACTIONS), except_id=action_id,
                                                      cluster=cluster)
            out = (set(unavailable_nodes or ()) | in_flight) - {node}
            usage["nodes_unavailable"] = len(out)
            if len(out) >= config.max_nodes_unavailable:
                return Verdict(False, (
                    f"blast-radius budget: {len(out)} node(s) already unschedulable or being drained "
                    f"({', '.join(sorted(out)[:10])}); execution.max_nodes_unavailable={config.max_nodes_unavailable}"
                ), usage)
        if reserve:
            await records.reserve_mutation(conn, action_id)
    return Verdict(True, "within budget", usage)


async def give_back(pool: asyncpg.Pool, action_id: int) -> None:
    """The admitted mutation did not happen (refused before any write): return its slot."""
    await records.release_mutation(pool, action_id)


async def usage(pool: asyncpg.Pool, config: ExecutionConfig, cluster: str | None = None) -> dict[str, int]:
    total = await records.mutations_since(pool, config.budget_window_s, cluster=cluster)
    return {"mutations_in_window": total, "max_mutations_per_window": config.max_mutations_per_window}
