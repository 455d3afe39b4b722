"""NetworkPolicy actions: isolating a pod, and removing a policy that blocks legitimate traffic."""

from __future__ import annotations

import hashlib

from pydantic import Field, model_validator

from kubernaut.execution.catalog.base import (
    ActionParams,
    ActionSpec,
    NoParams,
    PlanDraft,
    RbacRule,
    Risk,
    ref,
)
from kubernaut.models.finding import FindingKind as K
from kubernaut.models.resource import ResourceRef

QUARANTINE_LABEL = "kubernaut.ai/quarantine"
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


def _plan_remove_policy(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (record the full manifest on the action so it can be re-applied)",
        f"DELETE {ref(target)} preconditions.resourceVersion=<recorded>",
        f"if it is a kubernaut quarantine policy: PATCH v1 Pod {target.namespace}/<quarantined pod> "
        "metadata.labels[kubernaut.ai/quarantine]=null",
    ]


SPECS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="quarantine_pod",
        helps_when=(),
        harmful_when=(),
        summary="Isolate one pod with a deny-all NetworkPolicy, keeping it running for forensics.",
        params=QuarantinePodParams,
        target_kinds=("Pod",),
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=False,
        preconditions=(
            "the cluster's CNI enforces NetworkPolicy",
            "no other NetworkPolicy selecting the pod allows traffic (policies are additive)",
            "the workload has other replicas to carry the traffic",
        ),
        when_to_use=(
            "A pod behaves suspiciously (unexpected egress, crypto-mining CPU, compromise indicators) or "
            "corrupts shared state, and must be cut off but kept for investigation."
        ),
        when_not_to_use=(
            "Do not quarantine the only replica of a serving workload without approval (outage). Not a fix "
            "for ordinary crashes or slowness (restart_pod). Useless where the CNI ignores NetworkPolicy."
        ),
        verification=("The quarantine NetworkPolicy exists, the pod carries the label, and its connections drop."),
        inverse="remove_network_policy",
        inverse_note=(
            f"remove_network_policy on NetworkPolicy <namespace>/{QUARANTINE_POLICY_PREFIX}<pod>, then the "
            f"executor removes the {QUARANTINE_LABEL} label from the pod"
        ),
        rbac=(
            RbacRule("", "pods", ("get", "patch")),
            RbacRule("networking.k8s.io", "networkpolicies", ("get", "list", "create")),
        ),
        planner=_plan_quarantine,
    ),
    ActionSpec(
        name="remove_network_policy",
        helps_when=(K.NETWORK_POLICY_DENIES,),
        harmful_when=(),
        summary="Delete one NetworkPolicy (a blocking rule, or a quarantine created by quarantine_pod).",
        params=NoParams,
        target_kinds=("NetworkPolicy",),
        risk=Risk.HIGH,
        mutates=True,
        sensitive=True,
        preconditions=(
            "the policy demonstrably blocks required traffic, or is a kubernaut quarantine policy",
            "the policy is not a namespace default-deny security control",
        ),
        when_to_use=(
            "A recently added or changed NetworkPolicy cut traffic between services (connection timeouts "
            "right after it appeared); or lifting a quarantine."
        ),
        when_not_to_use=(
            "Do not remove default-deny or compliance policies: fix the allow rules instead. GitOps-managed "
            "policies are re-created by the controller: fix them in git."
        ),
        verification=("The policy is gone and the blocked connections succeed again (error rate and timeouts drop)."),
        inverse=None,
        inverse_note=("none in the catalog: the deleted manifest is recorded on the action for a human to re-apply"),
        rbac=(
            RbacRule("networking.k8s.io", "networkpolicies", ("get", "list", "delete")),
            # Lifting a quarantine also removes the quarantine label from the pod.
            RbacRule("", "pods", ("get", "patch")),
        ),
        planner=_plan_remove_policy,
    ),
)
