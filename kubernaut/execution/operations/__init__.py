"""The Kubernetes side of every mutating catalog action, by name (read-only ones live in `observe`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from kubernaut.execution.catalog import CATALOG
from kubernaut.execution.operations import jobs, network, nodes, pods, resources, storage, workloads
from kubernaut.execution.operations.base import (
    Applied,
    Context,
    Operation,
    Prepared,
    Refused,
    Verification,
    Write,
)
from kubernaut.execution.operations.nodes import PartialFailure


def _build() -> Mapping[str, Operation]:
    ops: dict[str, Operation] = {}
    for family in (pods, workloads, resources, nodes, storage, jobs, network):
        for op in family.OPERATIONS:
            ops[op.name] = op
    # Fail at import when the catalog and the implementations drift apart.
    mutating = {name for name, spec in CATALOG.items() if spec.mutates}
    if set(ops) != mutating:
        raise RuntimeError(f"operations out of sync with the catalog: missing {sorted(mutating - set(ops))}, "
                           f"unknown {sorted(set(ops) - mutating)}")
    return MappingProxyType(ops)


OPERATIONS: Mapping[str, Operation] = _build()

__all__ = ["OPERATIONS", "Applied", "Context", "Operation", "PartialFailure", "Prepared", "Refused", "Verification",
           "Write"]
