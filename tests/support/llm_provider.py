"""The LLM path's test seam: an OpenAI-compatible provider scripted per test over an in-process HTTP transport, the
crash-looping web Deployment it is asked about, and the decisions it answers with."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx2

from kubernaut.analysis.rules import load_rules
from kubernaut.context.models import (
    ContainerSpecSummary,
    ContainerStatusSummary,
    EventSummary,
    PodSummary,
    ResourceContext,
    RevisionSummary,
    WorkloadSummary,
)
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal

DEPLOY = ResourceRef(kind="Deployment", name="web", namespace="shop")


POD_NAME = "web-5f6d7c8b9-xyz12"


RULES = load_rules()


def crashloop() -> list[Signal]:
    labels = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": POD_NAME, "container": "web"}
    return [Signal(alert_id=1, alertname="KubePodCrashLooping", status="firing", labels=labels,
                   starts_at=datetime.now(timezone.utc), am_fingerprint="f")]


def decision(action: str = "restart_pod", target: str = f"Pod/shop/{POD_NAME}", confidence: int = 80,
             parameters: list[dict[str, str]] | None = None) -> str:
    return json.dumps({"root_cause": "wedged pod", "remediation": {"action": action, "target": target,
                                                                   "parameters": parameters or []},
                       "confidence": confidence, "alternatives": []})


def completion(content: str | None, model: str, tool_call: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_call:
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "remediation_decision", "arguments": content}}]}
    return {"id": "x", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 500, "completion_tokens": 60, "total_tokens": 560}}


class Provider:
    """Scripted replies per model; records every request body."""

    def __init__(self, replies: dict[str, list[Any]] | None = None) -> None:
        self.replies = replies or {}
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        queue = self.replies.get(body["model"]) or []
        reply = queue.pop(0) if queue else httpx2.Response(500, json={"error": {"message": "nothing scripted"}})
        if callable(reply):
            reply = await reply(request)
        if isinstance(reply, httpx2.Response):
            return reply
        return httpx2.Response(200, json=completion(reply, body["model"], tool_call=bool(body.get("tools"))))


class CrashingWeb:
    """The cluster's view the decisions rest on. With ``rollout``: web's pod exits with code 1 over and
    over since a rollout 10 minutes ago changed its image (a rollback is the fix). Without: web's process
    runs but fails its readiness probe (a wedged process: a restart may help)."""

    def __init__(self, rollout: bool = True) -> None:
        self.rollout = rollout

    async def context_for(self, target: ResourceRef, **_: Any) -> ResourceContext:
        now = datetime.now(timezone.utc)
        fields = {"image": "a web:1"}
        revisions = [RevisionSummary(revision=2, name="web-2", images=["web:2"], created_at=now - timedelta(minutes=10),
                                     fields={"image": "b web:2"}),
                     RevisionSummary(revision=1, name="web-1", images=["web:1"], created_at=now - timedelta(days=2),
                                     fields=fields)][: 2 if self.rollout else 1]
        if not self.rollout:
            return ResourceContext(
                target=target, cluster_available=True, found=True,
                workload=WorkloadSummary(kind="Deployment", name="web", namespace="shop", replicas=1,
                                         containers=[ContainerSpecSummary(name="web", image="web:1")],
                                         revisions=revisions[1:]),
                pods=[PodSummary(name=POD_NAME, namespace="shop", phase="Running", containers=[
                    ContainerStatusSummary(name="web", state="running", ready=False)])],
                events=[EventSummary(type="Warning", reason="Unhealthy", object=f"Pod/{POD_NAME}", count=40,
                                     message="Readiness probe failed: HTTP probe failed with statuscode: 503")])
        return ResourceContext(
            target=target, cluster_available=True, found=True,
            workload=WorkloadSummary(kind="Deployment", name="web", namespace="shop", replicas=1,
                                     containers=[ContainerSpecSummary(name="web", image="web:2")], revisions=revisions),
            pods=[PodSummary(name=POD_NAME, namespace="shop", phase="Running", restarts=3, containers=[
                ContainerStatusSummary(name="web", state="waiting", reason="CrashLoopBackOff", restart_count=3,
                                       last_termination_reason="Error", last_exit_code=1, last_finished_at=now)])])
