"""The executor's door to the Kubernetes API: the cluster facade under the executor's names.

Requests, discovery-chosen versions and error mapping live in ``kubernaut.cluster.api``; this module
keeps the names the pipeline and the operations use.
"""

from __future__ import annotations

from kubernaut.cluster.api import EXECUTOR_FIELD_MANAGER as FIELD_MANAGER
from kubernaut.cluster.api import ClusterAPI as Kube
from kubernaut.cluster.api import Obj, PatchType
from kubernaut.cluster.discovery import eviction_version_from
from kubernaut.cluster.errors import ApiError as KubeError
from kubernaut.cluster.errors import Unreachable as KubeUnreachable
from kubernaut.cluster.kinds import EXECUTOR_KINDS, Kind, Resource
from kubernaut.cluster.kinds import KINDS as _ALL_KINDS

# The kinds the catalog touches (scope reads a target's own labels only for these).
KINDS: dict[str, Kind] = {name: spec for name, spec in _ALL_KINDS.items() if name in EXECUTOR_KINDS}

__all__ = ["FIELD_MANAGER", "KINDS", "Kind", "Kube", "KubeError", "KubeUnreachable", "Obj", "PatchType", "Resource",
           "eviction_version_from"]
