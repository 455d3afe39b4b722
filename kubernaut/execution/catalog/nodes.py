"""Actions on Nodes. Every one of them can move or stop many workloads at once, so all are
sensitive (a human approves by default) and the executor's blast-radius budget applies."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import AfterValidator

from kubernaut.execution.catalog.grammar import LabelKey
from kubernaut.execution.catalog.rbac import RbacRule

NODE_KINDS = ("Node",)

# Taints under these domains belong to the node lifecycle controller, cloud providers and the
# scheduler; changing them by hand fights those controllers (or, for
# node.cloudprovider.kubernetes.io/uninitialized, schedules pods onto a half-initialised node).
RESERVED_TAINT_DOMAINS = ("kubernetes.io", "k8s.io")


class TaintEffect(str, Enum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


def _not_reserved(key: str) -> str:
    if "/" in key:
        prefix = key.split("/", 1)[0]
        if len(prefix) > 253:
            raise ValueError("the prefix must be at most 253 characters")
        for domain in RESERVED_TAINT_DOMAINS:
            if prefix == domain or prefix.endswith("." + domain):
                raise ValueError(
                    f"taints under {domain} are managed by Kubernetes controllers; use "
                    "cordon_node/uncordon_node or fix the node condition instead"
                )
    return key


TaintKey = Annotated[LabelKey, AfterValidator(_not_reserved)]


















_NODE_PATCH = RbacRule("", "nodes", ("get", "list", "patch"))

