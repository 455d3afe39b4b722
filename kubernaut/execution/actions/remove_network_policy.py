"""remove_network_policy: Delete one NetworkPolicy (a blocking rule, or a quarantine created by quarantine_pod)."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.network import QUARANTINE_LABEL
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.network import QUARANTINED_POD
from kubernaut.execution.operations.objects import annotations, labels, meta, with_rv
from kubernaut.models.resource import ResourceRef


def _plan_remove_policy(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (record the full manifest on the action so it can be re-applied)",
        f"DELETE {ref(target)} preconditions.resourceVersion=<recorded>",
        f"if it is a kubernaut quarantine policy: PATCH v1 Pod {target.namespace}/<quarantined pod> "
        "metadata.labels[kubernaut.ai/quarantine]=null",
    ]


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


SPEC = declared(__name__, params=NoParams, planner=_plan_remove_policy, operation=RemoveNetworkPolicy())
