"""increase_cpu_limits: its facts in increase_cpu_limits.yaml; the plan and operation are shared with
increase_memory_limits (catalog/resources.py, operations/resources.py)."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.resources import IncreaseCpuLimitsParams, limits_planner
from kubernaut.execution.operations.resources import IncreaseLimits

SPEC = declared(__name__, params=IncreaseCpuLimitsParams, planner=limits_planner("cpu"),
                operation=IncreaseLimits("cpu"))
