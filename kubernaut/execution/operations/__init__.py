"""The Kubernetes side of the catalog's actions: each mutating action's module declares its operation
(``ActionSpec.operation``); the read-only collect_diagnostics is ``observe``.

``OPERATIONS`` (name -> Operation) is read from the catalog on first use, so the action modules can import
``operations.base`` without a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from kubernaut.execution.operations.base import (
    Applied,
    Context,
    Operation,
    PartialFailure,
    Prepared,
    Refused,
    Verification,
    Write,
)


def __getattr__(name: str) -> Any:
    if name == "OPERATIONS":
        from kubernaut.execution.catalog import CATALOG

        operations: Mapping[str, Operation] = MappingProxyType(
            {name: spec.operation for name, spec in CATALOG.items() if spec.operation is not None})
        return operations
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["OPERATIONS", "Applied", "Context", "Operation", "PartialFailure", "Prepared", "Refused", "Verification",
           "Write"]
