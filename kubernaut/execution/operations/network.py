"""NetworkPolicies: quarantine one pod, remove a blocking policy (and lift a quarantine)."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog import NoParams, QuarantinePodParams, quarantine_policy_name
from kubernaut.execution.catalog.network import QUARANTINE_LABEL, quarantine_label_value
from kubernaut.execution.operations.base import (
    Context,
    Operation,
    Prepared,
    Refused,
    Verification,
    Write,
    annotations,
    labels,
    meta,
    must_get,
    selector_matches,
    with_rv,
)
from kubernaut.models.resource import ResourceRef

QUARANTINED_POD = "kubernaut.ai/quarantined-pod"


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
        return {"action": "remove_network_policy", "target": policy.model_dump(), "parameters": {}}

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


class RemoveNetworkPolicy(Operation):
    name = "remove_network_policy"

    async def prepare(self, ctx: Context, target: ResourceRef, params: NoParams,
                      undo: dict[str, Any] | None) -> Prepared:
        policy = await must_get(ctx, target)
        spec = policy.get("spec") or {}
        quarantined = annotations(policy).get(QUARANTINED_POD)
        selects_all = not (spec.get("podSelector") or {}).get("matchLabels") and not (
            spec.get("podSelector") or {}).get("matchExpressions")
        if quarantined is None and selects_all and not spec.get("ingress") and not spec.get("egress"):
            raise Refused(f"NetworkPolicy {target.name} is a namespace-wide default-deny (empty podSelector, no "
                          "rules): a security control, not a blocking mistake; fix the allow rules instead")
        # The pod's label goes first: if the delete then fails, a retry still finds the policy.
        writes: list[Write] = []
        record: dict[str, Any] = {
            # The manifest a human can re-apply: the catalog has no "create policy" action.
            "manifest": {"apiVersion": policy.get("apiVersion"), "kind": "NetworkPolicy",
                         "metadata": {k: v for k, v in meta(policy).items()
                                      if k in ("name", "namespace", "labels", "annotations")},
                         "spec": spec},
        }
        if quarantined:
            pod = await ctx.kube.get_or_none("Pod", quarantined, target.namespace)
            if pod is not None and QUARANTINE_LABEL in labels(pod):
                writes.append(Write("patch", "Pod", quarantined, target.namespace,
                                    with_rv(pod, {"metadata": {"labels": {QUARANTINE_LABEL: None}}}), before=pod))
                record["unquarantined_pod"] = quarantined
        writes.append(Write("delete", "NetworkPolicy", target.name, target.namespace, before=policy,
                            uid=meta(policy)["uid"], resource_version=meta(policy).get("resourceVersion")))
        return Prepared(writes, record, {"deleted": target.name, "unquarantined_pod": record.get("unquarantined_pod")})

    async def verify(self, ctx: Context, target: ResourceRef, params: NoParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        if await ctx.kube.get_or_none("NetworkPolicy", target.name, target.namespace) is not None:
            return Verification(False, [f"NetworkPolicy {target.name} exists again"])
        checks = [f"NetworkPolicy {target.name} is gone"]
        pod_name = after.get("unquarantined_pod")
        if pod_name:
            pod = await ctx.kube.get_or_none("Pod", pod_name, target.namespace)
            if pod is not None and QUARANTINE_LABEL in labels(pod):
                return Verification(False, [*checks, f"pod {pod_name} still carries {QUARANTINE_LABEL}"])
            checks.append(f"pod {pod_name} is no longer labelled {QUARANTINE_LABEL}")
        return Verification(True, checks)


OPERATIONS = (QuarantinePod(), RemoveNetworkPolicy())
