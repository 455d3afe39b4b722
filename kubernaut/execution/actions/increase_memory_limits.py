"""increase_memory_limits: the catalog entry and its operation."""

from __future__ import annotations

from kubernaut.execution.catalog.resources import IncreaseMemoryLimitsParams, limits_spec
from kubernaut.execution.operations.resources import IncreaseLimits

SPEC = limits_spec(
    "memory",
    IncreaseMemoryLimitsParams,
    "Raise the memory limit of a workload's container (by a factor, or to a given value, capped).",
    "Containers are OOMKilled (reason OOMKilled, exit code 137) or sit at their memory limit under "
    "normal load, after a traffic or data growth, and memory use is stable rather than leaking.",
    "Do not use for an unbounded leak (memory grows linearly until killed at any size): a higher limit "
    "only delays the crash; restart and notify instead. Do not use when the node, not the container, "
    "ran out of memory (node pressure evictions).",
    operation=IncreaseLimits("memory"),
)
