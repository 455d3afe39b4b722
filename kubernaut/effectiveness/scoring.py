"""Pure scoring rules of the effectiveness assessment: no I/O, so every rule is unit-tested directly."""

from __future__ import annotations

import math
from datetime import datetime

from kubernaut.effectiveness.models import Component, PodState, TargetState, Verdict

OOM_REASON = "OOMKilled"
CRASH_REASONS = frozenset({"CrashLoopBackOff"})
# Waiting reasons that mean the container will not come up by itself.
STUCK_REASONS = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
                           "InvalidImageName", "CreateContainerError"})


def _restarts_since(pod: PodState, since: datetime, baseline: dict[str, int] | None) -> tuple[int, bool]:
    """(restarts since ``since``, whether one of them was an OOM kill) for one pod.

    With a baseline (restart counts right after the action) the difference is exact; a pod created
    after the action restarted ``restartCount`` times since. Without one, the last termination time
    tells whether at least one restart happened since.
    """
    if baseline is not None and pod.uid in baseline:
        restarts = max(0, pod.restarts - baseline[pod.uid])
    elif pod.created_at is not None and pod.created_at >= since:
        restarts = pod.restarts
    else:
        restarts = sum(1 for c in pod.containers
                       if c.last_terminated_at is not None and c.last_terminated_at >= since and c.restarts > 0)
    oom = any(c.last_terminated_reason == OOM_REASON and c.last_terminated_at is not None
              and c.last_terminated_at >= since for c in pod.containers)
    return restarts, oom and restarts > 0


def health(target: TargetState, since: datetime, baseline: dict[str, int] | None = None) -> Component:
    """0 missing / none ready / any CrashLoopBackOff; 0.5 partly ready; 0.25 ready but OOMKilled since the
    action; 0.75 ready but restarted since; 1.0 all ready."""
    if not target.exists:
        return Component(name="health", value=0.0, reason=f"the {target.kind} no longer exists")
    if not target.supported:
        return Component(name="health", value=None, reason=f"no health rule for kind {target.kind}")
    if target.node_ready is not None:
        return Component(name="health", value=1.0 if target.node_ready else 0.0,
                         reason="node is Ready" if target.node_ready else "node is not Ready")
    if target.desired == 0:
        return Component(name="health", value=None, reason="scaled to zero replicas: no pod to judge")
    pods = target.pods
    desired = target.desired if target.desired is not None else max(1, len(pods))
    ready = sum(1 for p in pods if p.ready)
    stuck = sorted({c.waiting_reason for p in pods for c in p.containers if c.waiting_reason in STUCK_REASONS})
    restarts = 0
    oom = False
    for pod in pods:
        r, o = _restarts_since(pod, since, baseline)
        restarts += r
        oom = oom or o
    detail = {"desired": desired, "ready": ready, "pods": len(pods), "restarts_since": restarts,
              "oom_since": oom, "stuck": stuck}
    if ready == 0:
        why = f"0/{desired} pods ready" + (f" ({', '.join(stuck)})" if stuck else "")
        return Component(name="health", value=0.0, reason=why, detail=detail)
    if any(r in CRASH_REASONS for r in stuck):
        return Component(name="health", value=0.0, reason=f"{ready}/{desired} ready but CrashLoopBackOff",
                         detail=detail)
    if ready < desired:
        return Component(name="health", value=0.5, reason=f"{ready}/{desired} pods ready", detail=detail)
    if stuck:  # e.g. a new revision that cannot pull its image while the old pods still serve
        return Component(name="health", value=0.5, reason=f"all {ready} ready but pods stuck in {', '.join(stuck)}",
                         detail=detail)
    if oom:
        return Component(name="health", value=0.25, reason=f"all {ready} ready but OOMKilled since the action",
                         detail=detail)
    if restarts:
        return Component(name="health", value=0.75, reason=f"all {ready} ready but {restarts} restart(s) since "
                                                           "the action", detail=detail)
    return Component(name="health", value=1.0, reason=f"all {ready}/{desired} pods ready, no restart since",
                     detail=detail)


def relative_improvement(before: float, after: float, better: str = "lower") -> float | None:
    """How much of the problem went away, clamped to [0, 1]; None when ``before`` gives no scale."""
    if not (math.isfinite(before) and math.isfinite(after)):
        return None
    if better == "lower":
        if before <= 0:
            return None  # nothing to improve on: says nothing about the action
        return min(1.0, max(0.0, (before - after) / before))
    if before <= 0:
        return 1.0 if after > 0 else None
    return min(1.0, max(0.0, (after - before) / before))


def combine(components: dict[str, Component], weights: dict[str, float], effective_at: float,
            ineffective_below: float) -> tuple[float | None, Verdict, list[str]]:
    """Weighted score over the components actually measured, the verdict, and why."""
    reasons = [f"{c.name}: {c.reason}" for c in components.values()]
    drift = components.get("drift")
    measured = {k: c.value for k, c in components.items()
                if k in weights and c.value is not None and weights[k] > 0}
    score = None
    if measured:
        total = sum(weights[k] for k in measured)
        score = round(sum(weights[k] * v for k, v in measured.items()) / total, 4)
    if drift is not None and drift.value == 1.0 and drift.detail.get("reverted_by"):
        # Argo CD / Flux self-heal undid the live change: not the action's failure, a change made in the wrong place.
        return score, "reverted_by_gitops", [*reasons, f"reverted_by_gitops: {drift.detail['reverted_by']} restored "
                                                       "the spec from Git; the fix belongs in the repository"]
    if drift is not None and drift.value == 1.0:
        # Someone else changed the target during the window: the outcome is not ours to claim or blame.
        return score, "inconclusive", [*reasons, "inconclusive: the target was changed by someone else"]
    if score is None:
        return None, "inconclusive", [*reasons, "inconclusive: nothing could be measured"]
    if score >= effective_at and not measured.keys() - {"alert"}:
        # The sender controls a resolved webhook (issue 19, item 6): without health or metrics evidence a
        # resolution alone proves nothing, and an "effective" here would count toward autonomy.
        return score, "inconclusive", [*reasons, "inconclusive: the alert resolved but neither health nor metrics "
                                                 "could be measured; a resolution alone is not evidence"]
    if score >= effective_at:
        return score, "effective", [*reasons, f"effective: score {score:.2f} ≥ {effective_at:.2f}"]
    if score < ineffective_below:
        return score, "ineffective", [*reasons, f"ineffective: score {score:.2f} < {ineffective_below:.2f}"]
    return score, "inconclusive", [*reasons, f"inconclusive: score {score:.2f} between {ineffective_below:.2f} "
                                             f"and {effective_at:.2f}"]
