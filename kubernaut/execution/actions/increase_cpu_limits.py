"""increase_cpu_limits: the catalog entry and its operation."""

from __future__ import annotations

from kubernaut.execution.catalog.resources import IncreaseCpuLimitsParams, limits_spec
from kubernaut.execution.operations.resources import IncreaseLimits

SPEC = limits_spec(
    "cpu",
    IncreaseCpuLimitsParams,
    "Raise the CPU limit of a workload's container (by a factor, or to a given value, capped).",
    "Sustained CPU throttling (container_cpu_cfs_throttled ratio high) correlates with latency or "
    "failing liveness probes.",
    "Do not use for OOMKilled containers (that is memory). Do not use when the node itself is CPU "
    "saturated: raising limits moves the contention elsewhere.",
    operation=IncreaseLimits("cpu"),
)
