"""Actions on Nodes. Every one of them can move or stop many workloads at once, so all are
sensitive (a human approves by default) and the executor's blast-radius budget applies."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from kubernaut.execution.catalog.base import (
    ActionParams,
    ActionSpec,
    LabelKey,
    LabelValue,
    NoParams,
    PlanDraft,
    RbacRule,
    Risk,
    ref,
)
from kubernaut.models.finding import FindingKind as K
from kubernaut.models.resource import ResourceRef

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


class DrainNodeParams(ActionParams):
    """Evictions only (never plain deletes), so PodDisruptionBudgets always hold; the one knob that
    would let a drain ignore them is deliberately a constant."""

    grace_period_seconds: int | None = Field(
        default=None, ge=0, le=3600, description="Grace period per evicted pod; omitted = each pod's own."
    )
    timeout_seconds: int = Field(
        default=600,
        ge=30,
        le=3600,
        description="Give up (node stays cordoned) when pods remain after this long.",
    )
    ignore_daemonsets: bool = Field(
        default=True,
        description="Leave DaemonSet pods in place (they would be recreated on the node anyway).",
    )
    delete_emptydir_data: bool = Field(
        default=False, description="Allow evicting pods with emptyDir volumes, whose data is lost."
    )
    max_unavailable_respected: Literal[True] = Field(
        default=True,
        description="Always true: evictions blocked by a PodDisruptionBudget are retried, never forced.",
    )


class TaintNodeParams(ActionParams):
    """Key and value follow the label grammar the API server enforces for taints."""

    key: TaintKey = Field(description="Taint key, e.g. kubernaut.ai/quarantine.")
    value: LabelValue = Field(default="", description="Taint value (may be empty).")
    effect: TaintEffect = Field(description="NoExecute also evicts running pods without a toleration.")


class RemoveTaintParams(ActionParams):
    """Effect optional: without it every taint with the key goes, which is what 'untaint' usually means."""

    key: TaintKey = Field(description="Key of the taint to remove.")
    effect: TaintEffect | None = Field(
        default=None, description="Only the taint with this effect; omitted = all effects."
    )


def _plan_cordon(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (record spec.unschedulable for the inverse)",
        f"PATCH {ref(target)} spec.unschedulable=true",
    ]


def _plan_uncordon(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (refuse unless the node is Ready without memory/disk/PID pressure)",
        f"PATCH {ref(target)} spec.unschedulable=false",
    ]


def _plan_drain(target: ResourceRef, params: DrainNodeParams) -> PlanDraft:
    grace = (
        f" deleteOptions.gracePeriodSeconds={params.grace_period_seconds}"
        if params.grace_period_seconds is not None
        else ""
    )
    skip = "DaemonSet pods are skipped" if params.ignore_daemonsets else "refuse when DaemonSet pods are present"
    emptydir = "evicted (emptyDir data lost)" if params.delete_emptydir_data else "a reason to refuse"
    warnings = ["pods with emptyDir volumes lose that data"] if params.delete_emptydir_data else []
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record spec.unschedulable for the inverse)",
            f"PATCH {ref(target)} spec.unschedulable=true",
            f"LIST v1 Pod in all namespaces fieldSelector=spec.nodeName={target.name} (mirror pods are "
            f"skipped; {skip}; pods without a controller refuse the drain; pods with emptyDir are {emptydir})",
            f"CREATE policy/v1 Eviction for each remaining pod (POST v1 pods/eviction){grace}; HTTP 429 "
            "(PodDisruptionBudget) is retried with backoff, never forced",
            f"WATCH v1 Pod fieldSelector=spec.nodeName={target.name} until only skipped pods remain, or fail "
            f"after {params.timeout_seconds}s leaving the node cordoned",
        ],
        warnings=warnings,
    )


def _plan_taint(target: ResourceRef, params: TaintNodeParams) -> PlanDraft:
    taint = f"{params.key}={params.value}:{params.effect.value}"
    risk = Risk.HIGH if params.effect is TaintEffect.NO_EXECUTE else None
    warnings = (
        ["NoExecute evicts every running pod on the node that does not tolerate the taint"]
        if params.effect is TaintEffect.NO_EXECUTE
        else []
    )
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record spec.taints and resourceVersion; no-op when {taint} already present)",
            f"PATCH {ref(target)} spec.taints += "
            f"{{key: {params.key}, value: {params.value!r}, effect: {params.effect.value}}} (JSON patch with "
            "test on resourceVersion)",
        ],
        warnings=warnings,
        risk=risk,
    )


def _plan_remove_taint(target: ResourceRef, params: RemoveTaintParams) -> list[str]:
    which = f"key={params.key}" + (f", effect={params.effect.value}" if params.effect else " (all effects)")
    return [
        f"GET {ref(target)} (record the matching taints for the inverse; no-op when none match {which})",
        f"PATCH {ref(target)} spec.taints -= [{which}] (JSON patch with test on resourceVersion)",
    ]


_NODE_PATCH = RbacRule("", "nodes", ("get", "list", "patch"))

SPECS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="cordon_node",
        helps_when=(K.NODE_NOT_READY, K.NODE_PRESSURE),
        harmful_when=(K.TARGET_HEALTHY,),
        summary="Mark a node unschedulable; running pods stay where they are.",
        params=NoParams,
        target_kinds=NODE_KINDS,
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=True,
        preconditions=(
            "the node exists",
            "the remaining nodes have room for pods that will be scheduled meanwhile",
            "the blast-radius budget allows another unschedulable node",
        ),
        when_to_use=(
            "A node shows hardware, kernel, disk or network trouble (NotReady flapping, disk pressure, "
            "repeated pod failures only there) and should receive no new pods while it is investigated."
        ),
        when_not_to_use=(
            "Do not cordon when the problem follows a workload across nodes. Do not cordon several nodes at "
            "once, nor the last schedulable node of a pool."
        ),
        verification="spec.unschedulable is true and no new pods are scheduled onto the node.",
        inverse="uncordon_node",
        inverse_note="uncordon_node on the same node (only when it was schedulable before)",
        rbac=(_NODE_PATCH,),
        planner=_plan_cordon,
    ),
    ActionSpec(
        name="uncordon_node",
        helps_when=(K.NODES_CORDONED,),
        harmful_when=(K.NODE_NOT_READY, K.NODE_PRESSURE),
        summary="Make a cordoned node schedulable again.",
        params=NoParams,
        target_kinds=NODE_KINDS,
        risk=Risk.LOW,
        mutates=True,
        sensitive=True,
        preconditions=("the node is Ready", "no memory, disk or PID pressure condition is true"),
        when_to_use="A cordoned node has recovered (Ready, pressure gone, maintenance over).",
        when_not_to_use=(
            "Do not uncordon a node cordoned by someone else for maintenance (check who and why), nor one "
            "still NotReady or under pressure."
        ),
        verification="spec.unschedulable is false, pods schedule onto it and stay Ready.",
        inverse="cordon_node",
        inverse_note="cordon_node on the same node",
        rbac=(_NODE_PATCH,),
        planner=_plan_uncordon,
    ),
    ActionSpec(
        name="drain_node",
        helps_when=(K.NODE_NOT_READY,),
        harmful_when=(K.TARGET_HEALTHY, K.PDB_BLOCKS_EVICTION),
        summary="Cordon a node and evict its pods through the Eviction API, respecting PodDisruptionBudgets.",
        params=DrainNodeParams,
        target_kinds=NODE_KINDS,
        risk=Risk.HIGH,
        mutates=True,
        sensitive=True,
        preconditions=(
            "the rest of the cluster can host the evicted pods",
            "every pod on the node has a controller (bare pods would be lost)",
            "PodDisruptionBudgets allow the evictions within the timeout",
            "no other node is being drained (blast radius: one node at a time)",
        ),
        when_to_use=(
            "A node must be emptied: failing hardware or disk, kernel problems, persistent pressure, or a "
            "node that keeps killing pods; after cordon_node confirmed the node is the cause."
        ),
        when_not_to_use=(
            "Do not drain for a problem of one workload. Do not drain control-plane nodes, several nodes at "
            "once, or when capacity is short (pods go Pending). Never relax PDBs just to speed a drain."
        ),
        verification=("Only DaemonSet/mirror pods remain on the node and the evicted workloads are Ready elsewhere."),
        inverse="uncordon_node",
        inverse_note=("uncordon_node on the same node; evicted pods are not moved back (the scheduler rebalances)"),
        rbac=(
            _NODE_PATCH,
            RbacRule("", "pods", ("get", "list", "watch")),
            RbacRule("", "pods/eviction", ("create",)),
        ),
        planner=_plan_drain,
        dry_run=(
            "server-side: the cordon patch and every eviction are sent with dryRun=All (PDB refusals show as 429)"
        ),
    ),
    ActionSpec(
        name="taint_node",
        helps_when=(),
        harmful_when=(),
        summary="Add a taint to a node (NoSchedule, PreferNoSchedule or NoExecute).",
        params=TaintNodeParams,
        target_kinds=NODE_KINDS,
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=True,
        preconditions=(
            "the taint is not already present",
            "for NoExecute: the evicted pods can run elsewhere",
            "the key is not under kubernetes.io or k8s.io (controller-managed)",
        ),
        when_to_use=(
            "Keeping a class of workloads off a node (e.g. a node with a flaky GPU or local disk) while "
            "tolerating pods keep running; a finer tool than cordon_node."
        ),
        when_not_to_use=(
            "Do not use NoExecute unless evicting all non-tolerating pods is intended. Do not use system "
            "taint keys; prefer cordon_node to simply stop scheduling."
        ),
        verification=("The node has the taint; new non-tolerating pods are not scheduled there (NoExecute: evicted)."),
        inverse="remove_taint",
        inverse_note="remove_taint with the same key and effect",
        rbac=(_NODE_PATCH,),
        planner=_plan_taint,
    ),
    ActionSpec(
        name="remove_taint",
        helps_when=(K.UNTOLERATED_TAINT,),
        harmful_when=(K.NODE_NOT_READY, K.NODE_PRESSURE),
        summary="Remove a taint (by key, optionally effect) from a node.",
        params=RemoveTaintParams,
        target_kinds=NODE_KINDS,
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=True,
        preconditions=("a taint with the key is present", "the reason for the taint no longer holds"),
        when_to_use=(
            "Pods are Pending because of a leftover taint on a healthy node (after maintenance or a fixed fault)."
        ),
        when_not_to_use=(
            "Do not remove taints added by Kubernetes controllers or cloud providers (node.kubernetes.io/*, "
            "node.cloudprovider.kubernetes.io/*): they are re-added or protect an unready node. Do not "
            "remove dedicated-pool taints (e.g. GPU nodes) to make room for ordinary pods."
        ),
        verification="The taint is gone and Pending pods are scheduled onto the node.",
        inverse="taint_node",
        inverse_note=("taint_node with the key, value and effect recorded before removal (one call per removed taint)"),
        rbac=(_NODE_PATCH,),
        planner=_plan_remove_taint,
    ),
)
