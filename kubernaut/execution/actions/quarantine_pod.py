"""quarantine_pod: Isolate one pod with a deny-all NetworkPolicy, keeping it running for forensics."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field, model_validator

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.network import QUARANTINE_LABEL
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import PlanDraft, ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.network import QUARANTINED_POD
from kubernaut.execution.operations.objects import annotations, labels, meta, selector_matches, with_rv
from kubernaut.models.resource import ResourceRef

QUARANTINE_POLICY_PREFIX = "kubernaut-quarantine-"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def quarantine_label_value(pod: str) -> str:
    """Label values stop at 63 characters while pod names go to 253; long names are shortened
    with a hash so two long pods never share a quarantine."""
    return pod if len(pod) <= 63 else f"{pod[:46].rstrip('-.')}-{_short_hash(pod)}"


def quarantine_policy_name(pod: str) -> str:
    """Deterministic, so the inverse (and a retried execution) finds the same policy."""
    name = QUARANTINE_POLICY_PREFIX + pod
    return name if len(name) <= 253 else f"{name[:236].rstrip('-.')}-{_short_hash(pod)}"


class QuarantinePodParams(ActionParams):
    """Both directions by default: a compromised or misbehaving pod should neither serve traffic
    nor reach other services; one of them may be kept for debugging."""

    deny_ingress: bool = Field(default=True, description="Block all traffic to the pod.")
    deny_egress: bool = Field(default=True, description="Block all traffic from the pod (DNS included).")

    @model_validator(mode="after")
    def _something(self) -> QuarantinePodParams:
        if not (self.deny_ingress or self.deny_egress):
            raise ValueError("deny_ingress, deny_egress: at least one must be true, or nothing is isolated")
        return self


def _plan_quarantine(target: ResourceRef, params: QuarantinePodParams) -> PlanDraft:
    value = quarantine_label_value(target.name)
    policy = quarantine_policy_name(target.name)
    types = [t for t, on in (("Ingress", params.deny_ingress), ("Egress", params.deny_egress)) if on]
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record labels and uid)",
            f"LIST networking.k8s.io/v1 NetworkPolicy in namespace {target.namespace} (refuse when another "
            "policy selecting the pod allows traffic: policies add up, so the isolation would not hold)",
            f"CREATE networking.k8s.io/v1 NetworkPolicy {target.namespace}/{policy} "
            f"podSelector={{{QUARANTINE_LABEL}: {value}}} policyTypes={types} with no rules (deny all)",
            f"PATCH {ref(target)} metadata.labels[{QUARANTINE_LABEL}]={value}",
        ],
        warnings=[
            "the pod keeps its app labels, so Services still route to it (failing) unless ingress is "
            "denied; its controller does not replace it"
        ],
    )


def _types(policy: dict[str, Any]) -> list[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


class QuarantinePod(Operation):
    name = "quarantine_pod"

    async def prepare(self, ctx: Context, target: ResourceRef, params: QuarantinePodParams,
                      undo: dict[str, Any] | None) -> Prepared:
        pod = await must_get(ctx, target)
        if meta(pod).get("deletionTimestamp"):
            raise Refused(f"pod {target.namespace}/{target.name} is terminating: nothing to isolate")
        policy_name = quarantine_policy_name(target.name)
        value = quarantine_label_value(target.name)
        denied = [t for t, on in (("Ingress", params.deny_ingress), ("Egress", params.deny_egress)) if on]
        leaks = []
        ours = None
        for policy in await ctx.kube.list("NetworkPolicy", target.namespace):
            if meta(policy)["name"] == policy_name:
                if annotations(policy).get(QUARANTINED_POD) != target.name or labels(pod).get(QUARANTINE_LABEL):
                    raise Refused(f"pod {target.name} is already quarantined by NetworkPolicy {policy_name}")
                ours = policy  # a retry after our own policy was created but the label was not: finish it
                continue
            spec = policy.get("spec") or {}
            if not selector_matches(spec.get("podSelector") or {}, labels(pod)):
                continue
            # Policies add up: any rule allowing traffic in a direction we deny defeats the quarantine.
            for direction, rules in (("Ingress", spec.get("ingress")), ("Egress", spec.get("egress"))):
                if direction in denied and direction in _types(policy) and rules:
                    leaks.append(f"{meta(policy)['name']} allows {direction.lower()}")
        if leaks:
            raise Refused("other NetworkPolicies selecting the pod allow traffic, so a quarantine would not hold: "
                          + "; ".join(leaks))
        policy = {
            "metadata": {
                "name": policy_name,
                "labels": {QUARANTINE_LABEL: value, "app.kubernetes.io/managed-by": "kubernaut"},
                "annotations": {QUARANTINED_POD: target.name},
            },
            "spec": {"podSelector": {"matchLabels": {QUARANTINE_LABEL: value}}, "policyTypes": denied},
        }
        writes = [] if ours is not None else [Write("create", "NetworkPolicy", policy_name, target.namespace, policy)]
        writes.append(Write("patch", "Pod", target.name, target.namespace,
                            with_rv(pod, {"metadata": {"labels": {QUARANTINE_LABEL: value}}}), before=pod))
        notes = [] if params.deny_ingress else [
            "ingress stays open: Services keep routing to the pod (its app labels are unchanged)"]
        return Prepared(writes, {"pod_uid": meta(pod)["uid"], "policy": policy_name, "label": value},
                        {"policy": policy_name, "label": value, "policy_types": denied}, notes)

    def inverse(self, target: ResourceRef, params: QuarantinePodParams,
                record: dict[str, Any]) -> dict[str, Any] | None:
        policy = ResourceRef(kind="NetworkPolicy", name=record["policy"], namespace=target.namespace)
        return self.inverse_request("remove_network_policy", policy)

    async def verify(self, ctx: Context, target: ResourceRef, params: QuarantinePodParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        policy = await ctx.kube.get_or_none("NetworkPolicy", after["policy"], target.namespace)
        if policy is None:
            return Verification(False, [f"NetworkPolicy {after['policy']} is gone"])
        pod = await ctx.kube.get_or_none("Pod", target.name, target.namespace)
        if pod is None or meta(pod).get("uid") != record["pod_uid"]:
            return Verification(False, ["the quarantined pod no longer exists"])
        if not selector_matches((policy.get("spec") or {}).get("podSelector") or {}, labels(pod)):
            return Verification(False, [f"the pod lost its {QUARANTINE_LABEL} label: the policy no longer selects it"])
        return Verification(True, [
            f"NetworkPolicy {after['policy']} denies {', '.join(after['policy_types'])} and selects the pod",
            "dropped connections are enforced by the CNI and not observable through the API",
        ])


SPEC = declared(__name__, params=QuarantinePodParams, planner=_plan_quarantine, operation=QuarantinePod())
