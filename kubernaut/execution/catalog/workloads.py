"""Actions on workload controllers (Deployment, StatefulSet, DaemonSet): rollouts, scale, images."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field, StringConstraints

from kubernaut.execution.catalog.base import (
    ActionParams,
    ActionSpec,
    DnsLabel,
    NoParams,
    PlanDraft,
    RbacRule,
    Risk,
    ref,
    reject_whitespace,
)
from kubernaut.models.finding import OWNED_ELSEWHERE, RESTART_FUTILE, SCHEDULING_BLOCKED
from kubernaut.models.finding import FindingKind as K
from kubernaut.models.resource import ResourceRef

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
MAX_REPLICAS = 500

GITOPS_GUARD = (
    "Do not patch GitOps-managed workloads (Argo CD / Flux annotations or labels): the controller reverts a "
    "direct patch within minutes, so fix it in git (notify_only with the proposed change)."
)
OOM_GUARD = (
    "Do not roll back when containers are OOMKilled: the previous revision needs the same memory; raise it "
    "with increase_memory_limits instead."
)

# Docker/OCI reference grammar (distribution/reference), simplified: [registry[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]{{1,5}})?/)?"
IMAGE_RE = (
    rf"^{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha(?:256:[a-f0-9]{64}|512:[a-f0-9]{128}))?$"
)
_TAG_OR_DIGEST = re.compile(r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha(256|512):[a-f0-9]+)$")

ImageRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=IMAGE_RE),
    BeforeValidator(reject_whitespace),
    Field(examples=["registry.example.com/payments/api:1.4.2", "nginx@sha256:" + "0" * 64]),
]


class ScaleParams(ActionParams):
    """Replicas are bounded so a hallucinated 10000 cannot exhaust the cluster; 0 is allowed
    because stopping a runaway consumer is a legitimate remediation, but the plan flags it."""

    replicas: int = Field(
        ge=0, le=MAX_REPLICAS, description="Desired replicas; 0 stops the workload entirely (an outage)."
    )


class ScaleDeploymentParams(ScaleParams):
    """Distinct class so the schema and audit name the action."""


class ScaleStatefulSetParams(ScaleParams):
    """Distinct class so the schema and audit name the action."""


class RollbackParams(ActionParams):
    """Omitting the revision means 'the one before the current', which is what operators mean
    nine times out of ten; an explicit one is for skipping several bad revisions."""

    to_revision: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="deployment.kubernetes.io/revision to restore; omitted = previous.",
    )


class SetImageParams(ActionParams):
    """Container and image are both required: guessing the container of a multi-container pod
    (sidecars!) is how the wrong image ends up in production."""

    container: DnsLabel = Field(description="Name of the container (not an init container) whose image is replaced.")
    image: ImageRef = Field(description="Full image reference; prefer a digest or an immutable tag.")


def _plan_rollout_restart(target: ResourceRef, params: NoParams) -> PlanDraft:
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record generation; refuse when paused or a rollout is already in progress)",
            f"PATCH {ref(target)} spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]=<now>",
            f"WATCH {ref(target)} until status.updatedReplicas == status.readyReplicas == spec.replicas",
        ]
    )


def _scale_draft(target: ResourceRef, params: ScaleParams) -> PlanDraft:
    warnings: list[str] = []
    risk = None
    if params.replicas == 0:
        warnings.append(f"replicas=0 stops every pod of {target.kind} {target.namespace}/{target.name}: an outage")
        risk = Risk.HIGH
    return PlanDraft(
        steps=[
            f"GET {ref(target)}/scale (record spec.replicas for the inverse)",
            f"LIST autoscaling/v2 HorizontalPodAutoscaler in namespace {target.namespace} (refuse when one "
            "targets this workload: it would undo the change)",
            f"PATCH {ref(target)}/scale spec.replicas={params.replicas}",
            f"WATCH {ref(target)} until status.readyReplicas == {params.replicas}",
        ],
        warnings=warnings,
        risk=risk,
    )


def _plan_scale_statefulset(target: ResourceRef, params: ScaleStatefulSetParams) -> PlanDraft:
    draft = _scale_draft(target, params)
    draft.warnings.append(
        "scaling a StatefulSet down removes the highest ordinals; their PersistentVolumeClaims are kept"
    )
    return draft


def _plan_rollback(target: ResourceRef, params: RollbackParams) -> PlanDraft:
    which = f"revision {params.to_revision}" if params.to_revision else "the revision before the current one"
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record the current deployment.kubernetes.io/revision for the inverse)",
            f"LIST apps/v1 ReplicaSet in namespace {target.namespace} owned by the Deployment; pick {which}",
            f"PATCH {ref(target)} spec.template=<template of the chosen ReplicaSet, pod-template-hash removed>",
            f"WATCH {ref(target)} until the rollout completes (status.updatedReplicas == spec.replicas, all ready)",
        ]
    )


def _plan_pause(target: ResourceRef, params: NoParams) -> list[str]:
    return [f"GET {ref(target)}", f"PATCH {ref(target)} spec.paused=true"]


def _plan_resume(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)}",
        f"PATCH {ref(target)} spec.paused=false",
        f"WATCH {ref(target)} until the pending rollout completes",
    ]


def _plan_set_image(target: ResourceRef, params: SetImageParams) -> PlanDraft:
    warnings: list[str] = []
    if not _TAG_OR_DIGEST.search(params.image.rsplit("/", 1)[-1]) or params.image.endswith(":latest"):
        warnings.append("the image has no immutable tag or digest: the rollout is not reproducible")
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (refuse unless spec.template.spec.containers has {params.container!r}; "
            "record its current image for the inverse)",
            f"PATCH {ref(target)} "
            f"spec.template.spec.containers[name={params.container}].image={params.image} (strategic merge)",
            f"WATCH {ref(target)} until the rollout completes and the new pods are Ready",
        ],
        warnings=warnings,
    )


def _workload_rbac(resources: tuple[str, ...], verbs: tuple[str, ...]) -> tuple[RbacRule, ...]:
    return tuple(RbacRule("apps", resource, verbs) for resource in resources)


_WORKLOAD_RESOURCES = ("deployments", "statefulsets", "daemonsets")
_HPA_LIST = RbacRule("autoscaling", "horizontalpodautoscalers", ("get", "list"))

SPECS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="rollout_restart",
        helps_when=(K.PROBE_FAILING,),
        harmful_when=(*RESTART_FUTILE,),
        summary="Rolling restart of a Deployment, StatefulSet or DaemonSet (kubectl rollout restart).",
        params=NoParams,
        target_kinds=WORKLOAD_KINDS,
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=False,
        preconditions=(
            "the workload exists and is not paused",
            "no rollout is in progress",
            "the update strategy keeps replicas available (maxUnavailable < replicas)",
        ),
        when_to_use=(
            "Many or all pods of a workload are degraded by a condition a fresh process clears (stale "
            "config/secret mounted as env, leaked connections, cache corruption), and the spec itself is "
            "fine."
        ),
        when_not_to_use=(
            "Do not use when the current revision is broken (rollback_deployment) or when containers are "
            "OOMKilled (increase_memory_limits). " + GITOPS_GUARD
        ),
        verification=("All pods were replaced (new restartedAt), the rollout completed and the alert resolves."),
        inverse=None,
        inverse_note="none: the pods are already replaced; only the restartedAt annotation changed",
        rbac=_workload_rbac(_WORKLOAD_RESOURCES, ("get", "list", "watch", "patch")),
        planner=_plan_rollout_restart,
    ),
    ActionSpec(
        name="scale_deployment",
        helps_when=(),
        harmful_when=(K.TARGET_HEALTHY, *SCHEDULING_BLOCKED, *OWNED_ELSEWHERE),
        summary="Set the replica count of a Deployment (0..500; 0 stops it).",
        params=ScaleDeploymentParams,
        target_kinds=("Deployment",),
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=False,
        preconditions=(
            "no HorizontalPodAutoscaler targets the Deployment (use update_hpa instead)",
            "the namespace ResourceQuota and cluster capacity allow the extra pods",
        ),
        when_to_use=(
            "Saturation (CPU, queue depth, latency) with healthy pods and no autoscaler; or scaling a "
            "runaway consumer down to protect a dependency."
        ),
        when_not_to_use=(
            "Do not use when an HPA manages the Deployment (it reverts the change; use update_hpa). Do not "
            "scale up crashing or OOMKilled pods: more copies crash the same way. Scaling to 0 is an outage "
            "and needs explicit intent. " + GITOPS_GUARD
        ),
        verification="status.readyReplicas equals the requested replicas and the saturation metric improves.",
        inverse="scale_deployment",
        inverse_note="scale_deployment with replicas=<spec.replicas recorded before the change>",
        rbac=(
            *_workload_rbac(("deployments",), ("get", "list", "watch")),
            RbacRule("apps", "deployments/scale", ("get", "patch")),
            _HPA_LIST,
        ),
        planner=_scale_draft,
    ),
    ActionSpec(
        name="scale_statefulset",
        helps_when=(),
        harmful_when=(K.TARGET_HEALTHY, *SCHEDULING_BLOCKED, *OWNED_ELSEWHERE),
        summary=("Set the replica count of a StatefulSet (0..500); ordered, and storage is kept on scale-down."),
        params=ScaleStatefulSetParams,
        target_kinds=("StatefulSet",),
        risk=Risk.HIGH,
        mutates=True,
        sensitive=True,
        preconditions=(
            "no HorizontalPodAutoscaler targets the StatefulSet",
            "the application tolerates membership changes (quorum-based systems: keep an odd, sufficient count)",
            "storage for new ordinals can be provisioned",
        ),
        when_to_use=("Capacity problems of a stateful service whose operator documents manual scaling as safe."),
        when_not_to_use=(
            "Do not scale quorum systems (etcd, ZooKeeper, Kafka controllers) below quorum or without their "
            "own membership procedure. Do not use when an operator (CRD) owns the StatefulSet: change the "
            "custom resource instead. " + GITOPS_GUARD
        ),
        verification=(
            "status.readyReplicas equals the requested replicas and the application reports healthy membership."
        ),
        inverse="scale_statefulset",
        inverse_note="scale_statefulset with replicas=<spec.replicas recorded before the change>",
        rbac=(
            *_workload_rbac(("statefulsets",), ("get", "list", "watch")),
            RbacRule("apps", "statefulsets/scale", ("get", "patch")),
            _HPA_LIST,
        ),
        planner=_plan_scale_statefulset,
    ),
    ActionSpec(
        name="rollback_deployment",
        helps_when=(K.ROLLOUT_SUSPECT,),
        harmful_when=(K.OOM_KILLED, K.TARGET_HEALTHY, *OWNED_ELSEWHERE),
        summary="Roll a Deployment back to its previous (or a given) revision.",
        params=RollbackParams,
        target_kinds=("Deployment",),
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=False,
        preconditions=(
            "the target revision's ReplicaSet still exists (revisionHistoryLimit)",
            "the problem started with the current revision's rollout",
        ),
        when_to_use=(
            "Errors, crashes or latency began right after a rollout (new image or config), and the previous "
            "revision was healthy."
        ),
        when_not_to_use=OOM_GUARD
        + " Do not roll back across schema migrations that the old version cannot read. "
        + GITOPS_GUARD,
        verification=(
            "The Deployment runs the restored template, the rollout completed and the error rate returns to "
            "its pre-rollout level."
        ),
        inverse="rollback_deployment",
        inverse_note="rollback_deployment with to_revision=<the revision current before the rollback>",
        rbac=(
            *_workload_rbac(("deployments",), ("get", "list", "watch", "patch")),
            RbacRule("apps", "replicasets", ("get", "list")),
        ),
        planner=_plan_rollback,
    ),
    ActionSpec(
        name="pause_rollout",
        helps_when=(K.ROLLOUT_SUSPECT,),
        harmful_when=(K.TARGET_HEALTHY, *OWNED_ELSEWHERE),
        summary="Pause a Deployment's rollout so a bad revision stops spreading.",
        params=NoParams,
        target_kinds=("Deployment",),
        risk=Risk.LOW,
        mutates=True,
        sensitive=False,
        preconditions=("a rollout is in progress", "the Deployment is not already paused"),
        when_to_use=(
            "A rollout is progressing while new pods fail readiness or raise errors; stop it before deciding."
        ),
        when_not_to_use=(
            "Do not leave a Deployment paused: it ignores later spec changes until resumed. Not for a "
            "completed rollout (use rollback_deployment). " + GITOPS_GUARD
        ),
        verification="spec.paused is true and no further pods of the new ReplicaSet are created.",
        inverse="resume_rollout",
        inverse_note="resume_rollout on the same Deployment",
        rbac=_workload_rbac(("deployments",), ("get", "patch")),
        planner=_plan_pause,
    ),
    ActionSpec(
        name="resume_rollout",
        helps_when=(),
        harmful_when=(*OWNED_ELSEWHERE,),
        summary="Resume a paused Deployment rollout.",
        params=NoParams,
        target_kinds=("Deployment",),
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=False,
        preconditions=("the Deployment is paused", "the reason for pausing has been fixed"),
        when_to_use="After a pause, once the new revision is known good or the template has been corrected.",
        when_not_to_use=("Do not resume while the new revision is still failing: the rollout resumes spreading it."),
        verification="spec.paused is false and the rollout completes with all pods Ready.",
        inverse="pause_rollout",
        inverse_note="pause_rollout on the same Deployment",
        rbac=_workload_rbac(("deployments",), ("get", "list", "watch", "patch")),
        planner=_plan_resume,
    ),
    ActionSpec(
        name="set_image",
        helps_when=(),
        harmful_when=(*OWNED_ELSEWHERE,),
        summary="Replace the image of one container of a Deployment, StatefulSet or DaemonSet.",
        params=SetImageParams,
        target_kinds=WORKLOAD_KINDS,
        risk=Risk.HIGH,
        mutates=True,
        sensitive=True,
        preconditions=(
            "the container exists in the pod template",
            "the image exists and is pullable by the workload's service account (imagePullSecrets)",
        ),
        when_to_use=(
            "A known-good image must be pinned (e.g. a hotfix build, or the last good tag when the "
            "ReplicaSet history is gone); ImagePullBackOff caused by a mistyped tag."
        ),
        when_not_to_use=(
            "Do not invent image tags: use only references seen in the cluster or given by a human. Prefer "
            "rollback_deployment when the previous revision is what you want. " + GITOPS_GUARD
        ),
        verification="New pods run the requested image (status.containerStatuses[].imageID) and are Ready.",
        inverse="set_image",
        inverse_note="set_image with container=<same>, image=<image recorded before the change>",
        rbac=_workload_rbac(_WORKLOAD_RESOURCES, ("get", "list", "watch", "patch")),
        planner=_plan_set_image,
    ),
)
