"""Workload controllers: rollout restart, scale, rollback, pause/resume, set image."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog import NoParams, RollbackParams, ScaleParams, SetImageParams
from kubernaut.execution.operations.base import (
    Context,
    Operation,
    Prepared,
    Refused,
    Verification,
    Write,
    annotations,
    merge_patch,
    meta,
    must_get,
    rollout_state,
    selector_string,
    with_rv,
)
from kubernaut.models.resource import ResourceRef

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"


def _resolve_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total
        return -(-scaled // 100) if round_up else scaled // 100
    return int(value or 0)


def _check_rollable(obj: dict[str, Any], target: ResourceRef) -> None:
    spec = obj.get("spec") or {}
    if target.kind == "Deployment":
        if spec.get("paused"):
            raise Refused(f"Deployment {target.namespace}/{target.name} is paused: resume_rollout first")
        strategy = spec.get("strategy") or {}
        replicas = spec.get("replicas", 1)
        if strategy.get("type") == "Recreate" and replicas > 0:
            raise Refused("the Deployment uses the Recreate strategy: a restart would stop every pod at once")
        max_unavailable = _resolve_int_or_percent(
            (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%"), replicas, round_up=False)
        if replicas > 0 and max_unavailable >= replicas:
            raise Refused(f"maxUnavailable ({max_unavailable}) >= replicas ({replicas}): a restart could take "
                          "every replica down at once")
    elif (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        raise Refused(f"{target.kind} uses the OnDelete update strategy: changing the template restarts nothing")
    done, text = rollout_state(obj)
    if done is None:
        raise Refused(f"a rollout is already in progress ({text})")
    if done is False:
        raise Refused(f"the current rollout failed ({text}): fix or roll back first")


class RolloutRestart(Operation):
    name = "rollout_restart"

    async def prepare(self, ctx: Context, target: ResourceRef, params: NoParams,
                      undo: dict[str, Any] | None) -> Prepared:
        obj = await must_get(ctx, target)
        _check_rollable(obj, target)
        stamp = ctx.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        previous = annotations((obj.get("spec") or {}).get("template")).get(RESTARTED_AT)
        if previous == stamp:  # two restarts within one second would be one template change
            raise Refused(f"already restarted at {stamp}")
        body = with_rv(obj, {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}})
        write = Write("patch", target.kind, target.name, target.namespace, body, "strategic", before=obj)
        return Prepared([write], {"generation": meta(obj).get("generation"), "restarted_at": previous},
                        {"restarted_at": stamp})

    async def verify(self, ctx: Context, target: ResourceRef, params: NoParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        obj = await must_get(ctx, target)
        stamp = annotations((obj.get("spec") or {}).get("template")).get(RESTARTED_AT)
        if stamp != after.get("restarted_at"):
            return Verification(False, [f"template restartedAt is {stamp!r}, not ours ({after.get('restarted_at')!r}):"
                                        " the template was changed again since"])
        done, text = rollout_state(obj)
        return Verification(done, [f"template restartedAt={stamp}", text])


class Scale(Operation):
    """scale_deployment and scale_statefulset: the /scale subresource, refused under an HPA."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]

    async def prepare(self, ctx: Context, target: ResourceRef, params: ScaleParams,
                      undo: dict[str, Any] | None) -> Prepared:
        await must_get(ctx, target)
        for hpa in await ctx.kube.list("HorizontalPodAutoscaler", target.namespace):
            ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            if ref.get("kind") == target.kind and ref.get("name") == target.name:
                raise Refused(f"HorizontalPodAutoscaler {meta(hpa)['name']} manages {target.kind} {target.name} "
                              "and would undo the change: use update_hpa instead")
        scale = await ctx.kube.request("GET", (await ctx.kube.resource(target.kind)).path(
            target.namespace, target.name, "scale"))
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        if current == params.replicas:
            raise Refused(f"{target.kind} {target.namespace}/{target.name} already has {current} replicas: "
                          "nothing to change")
        body = with_rv(scale, {"spec": {"replicas": params.replicas}})
        write = Write("patch", target.kind, target.name, target.namespace, body, "merge", subresource="scale",
                      before=scale)
        return Prepared([write], {"replicas": current}, {"replicas": params.replicas})

    def inverse(self, target: ResourceRef, params: ScaleParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return {"action": self.name, "target": target.model_dump(), "parameters": {"replicas": record["replicas"]}}

    async def verify(self, ctx: Context, target: ResourceRef, params: ScaleParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        obj = await must_get(ctx, target)
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        want = after["replicas"]
        if spec.get("replicas") != want:
            return Verification(False, [f"spec.replicas is {spec.get('replicas')}, not {want}: changed since"])
        ready = status.get("readyReplicas") or 0
        total = status.get("replicas") or 0
        checks = [f"spec.replicas={want}", f"{ready} ready of {total} (want {want})"]
        return Verification(True if ready == want and total == want else None, checks)


class RollbackDeployment(Operation):
    name = "rollback_deployment"

    async def prepare(self, ctx: Context, target: ResourceRef, params: RollbackParams,
                      undo: dict[str, Any] | None) -> Prepared:
        dep = await must_get(ctx, target)
        spec = dep.get("spec") or {}
        if spec.get("paused"):
            raise Refused("the Deployment is paused: resume_rollout first (a paused Deployment ignores the rollback)")
        current = int(annotations(dep).get(REVISION) or 0)
        by_revision = await self._revisions(ctx, target, dep)
        if params.to_revision is not None:
            chosen = params.to_revision
            if chosen == current:
                raise Refused(f"revision {chosen} is the current revision: nothing to roll back")
            if chosen not in by_revision:
                raise Refused(f"revision {chosen} no longer exists (revisionHistoryLimit); available: "
                              f"{sorted(by_revision) or 'none'}")
        else:
            older = [r for r in by_revision if r < current]
            if not older:
                raise Refused(f"no revision before the current one ({current}) is left to roll back to")
            chosen = max(older)
        rs = by_revision[chosen]
        template = _template_of(rs)
        if _same_template(template, spec.get("template") or {}):
            raise Refused(f"revision {chosen} has the same pod template as the current one: nothing would change")
        body = with_rv(dep, {"spec": {"template": merge_patch(spec.get("template") or {}, template)}})
        write = Write("patch", "Deployment", target.name, target.namespace, body, "merge", before=dep)
        return Prepared([write], {"revision": current, "to_revision": chosen, "replicaset": meta(rs)["name"]},
                        {"to_revision": chosen, "replicaset": meta(rs)["name"]})

    @staticmethod
    async def _revisions(ctx: Context, target: ResourceRef, dep: dict[str, Any]) -> dict[int, dict[str, Any]]:
        selector = selector_string((dep.get("spec") or {}).get("selector"))
        owned = [
            rs for rs in await ctx.kube.list("ReplicaSet", target.namespace, label_selector=selector or None)
            if any(o.get("uid") == meta(dep)["uid"] for o in meta(rs).get("ownerReferences") or [])
        ]
        return {int(annotations(rs).get(REVISION) or 0): rs for rs in owned if annotations(rs).get(REVISION)}

    def inverse(self, target: ResourceRef, params: RollbackParams, record: dict[str, Any]) -> dict[str, Any] | None:
        if not record.get("revision"):
            return None
        return {"action": self.name, "target": target.model_dump(), "parameters": {"to_revision": record["revision"]}}

    async def verify(self, ctx: Context, target: ResourceRef, params: RollbackParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        dep = await must_get(ctx, target)
        rs = await ctx.kube.get_or_none("ReplicaSet", after["replicaset"], target.namespace)
        if rs is None:
            return Verification(False, [f"ReplicaSet {after['replicaset']} of the restored revision is gone"])
        if not _same_template(_template_of(rs), (dep.get("spec") or {}).get("template") or {}):
            return Verification(False, ["the Deployment's template no longer matches the restored revision"])
        done, text = rollout_state(dep)
        return Verification(done, [f"template is that of ReplicaSet {after['replicaset']}", text])


def _template_of(rs: dict[str, Any]) -> dict[str, Any]:
    template = dict((rs.get("spec") or {}).get("template") or {})
    tmeta = dict(template.get("metadata") or {})
    tlabels = {k: v for k, v in (tmeta.get("labels") or {}).items() if k != "pod-template-hash"}
    tmeta["labels"] = tlabels
    template["metadata"] = tmeta
    return template


def _same_template(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(t: dict[str, Any]) -> dict[str, Any]:
        t = dict(t)
        m = {k: v for k, v in (t.get("metadata") or {}).items() if v not in (None, {}, [])}
        m.pop("creationTimestamp", None)
        t["metadata"] = m
        return t
    return norm(a) == norm(b)


class PauseRollout(Operation):
    name = "pause_rollout"

    async def prepare(self, ctx: Context, target: ResourceRef, params: NoParams,
                      undo: dict[str, Any] | None) -> Prepared:
        dep = await must_get(ctx, target)
        if (dep.get("spec") or {}).get("paused"):
            raise Refused(f"Deployment {target.namespace}/{target.name} is already paused")
        done, text = rollout_state(dep)
        # Restoring a recorded pause (the inverse of resume_rollout) needs no rollout in flight.
        if done is True and undo is None:
            raise Refused(f"no rollout is in progress ({text}): nothing to pause; use rollback_deployment "
                          "for a completed bad rollout")
        write = Write("patch", "Deployment", target.name, target.namespace, with_rv(dep, {"spec": {"paused": True}}),
                      before=dep)
        return Prepared([write], {"paused": False}, {"paused": True})

    def inverse(self, target: ResourceRef, params: NoParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return {"action": "resume_rollout", "target": target.model_dump(), "parameters": {}}

    async def verify(self, ctx: Context, target: ResourceRef, params: NoParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        dep = await must_get(ctx, target)
        paused = bool((dep.get("spec") or {}).get("paused"))
        return Verification(paused, [f"spec.paused={str(paused).lower()}"])


class ResumeRollout(Operation):
    name = "resume_rollout"

    async def prepare(self, ctx: Context, target: ResourceRef, params: NoParams,
                      undo: dict[str, Any] | None) -> Prepared:
        dep = await must_get(ctx, target)
        if not (dep.get("spec") or {}).get("paused"):
            raise Refused(f"Deployment {target.namespace}/{target.name} is not paused")
        write = Write("patch", "Deployment", target.name, target.namespace,
                      with_rv(dep, {"spec": {"paused": None}}), before=dep)
        return Prepared([write], {"paused": True}, {"paused": False})

    def inverse(self, target: ResourceRef, params: NoParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return {"action": "pause_rollout", "target": target.model_dump(), "parameters": {}}

    async def verify(self, ctx: Context, target: ResourceRef, params: NoParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        dep = await must_get(ctx, target)
        if (dep.get("spec") or {}).get("paused"):
            return Verification(False, ["spec.paused is true again"])
        done, text = rollout_state(dep)
        return Verification(done, ["spec.paused=false", text])


class SetImage(Operation):
    name = "set_image"

    async def prepare(self, ctx: Context, target: ResourceRef, params: SetImageParams,
                      undo: dict[str, Any] | None) -> Prepared:
        obj = await must_get(ctx, target)
        containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        found = next((c for c in containers if c.get("name") == params.container), None)
        if found is None:
            names = ", ".join(c.get("name", "?") for c in containers)
            raise Refused(f"the pod template has no container {params.container!r} (containers: {names})")
        if found.get("image") == params.image:
            raise Refused(f"container {params.container} already runs {params.image}")
        body = with_rv(obj, {"spec": {"template": {"spec": {"containers": [
            {"name": params.container, "image": params.image}]}}}})
        write = Write("patch", target.kind, target.name, target.namespace, body, "strategic", before=obj)
        return Prepared([write], {"container": params.container, "image": found.get("image")},
                        {"container": params.container, "image": params.image})

    def inverse(self, target: ResourceRef, params: SetImageParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return {"action": self.name, "target": target.model_dump(),
                "parameters": {"container": record["container"], "image": record["image"]}}

    async def verify(self, ctx: Context, target: ResourceRef, params: SetImageParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        obj = await must_get(ctx, target)
        containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        image = next((c.get("image") for c in containers if c.get("name") == after["container"]), None)
        if image != after["image"]:
            return Verification(False, [f"container {after['container']} runs {image!r}, not {after['image']!r}"])
        done, text = rollout_state(obj)
        return Verification(done, [f"template image of {after['container']} is {image}", text])


OPERATIONS = (
    RolloutRestart(), Scale("scale_deployment"), Scale("scale_statefulset"), RollbackDeployment(), PauseRollout(),
    ResumeRollout(), SetImage(),
)
