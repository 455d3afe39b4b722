"""increase_memory_limits: its facts in increase_memory_limits.yaml; the plan and operation are shared with
increase_cpu_limits (catalog/resources.py, operations/resources.py)."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.resources import IncreaseMemoryLimitsParams, limits_planner
from kubernaut.execution.operations.resources import IncreaseLimits

SPEC = declared(__name__, params=IncreaseMemoryLimitsParams, planner=limits_planner("memory"),
                operation=IncreaseLimits("memory"))
