"""Kubernetes Warning events → AlertManager-shaped alerts (kubernaut.processing.events), without a cluster."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubernaut.config.settings import EventSourceConfig, KubernautConfig
from kubernaut.processing.alert_target import resolve_from_labels
from kubernaut.processing.event_signals import SOURCE, clean_text, event_to_signal, signal_reason
from kubernaut.processing.events import EventSource
from tests.support.polling import eventually

CONFIG = EventSourceConfig()
RULES = Path(__file__).resolve().parents[2] / "kubernaut" / "analysis" / "rules.yaml"


def event(reason: str = "BackOff", message: str = "Back-off restarting failed container", *, count: int = 1,
          type_: str = "Warning", kind: str = "Pod", name: str = "web-5f6d7c8b9-abcde", uid: str = "uid-1",
          **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": f"{name}.17a1", "namespace": "shop", "resourceVersion": "42"},
        "involvedObject": {"kind": kind, "name": name, "namespace": "shop", "uid": uid,
                           "fieldPath": "spec.containers{main}"},
        "reason": reason, "message": message, "type": type_, "count": count,
        "firstTimestamp": "2026-11-26T04:00:00Z", "lastTimestamp": "2026-11-26T04:00:00Z",
        "source": {"component": "kubelet", "host": "node-1"},
    }
    body.update(extra)
    return body


def test_a_crash_loop_event_is_the_alert_the_rules_know() -> None:
    signal = event_to_signal(event(), CONFIG)
    assert signal is not None
    alert = signal.alert
    assert alert.status == "firing" and alert.labels == {
        "alertname": "KubePodCrashLooping", "reason": "CrashLoopBackOff", "event_reason": "BackOff",
        "severity": "warning", "source": SOURCE, "namespace": "shop", "pod": "web-5f6d7c8b9-abcde",
        "container": "main"}
    assert alert.starts_at == datetime(2026, 11, 26, 4, tzinfo=timezone.utc)
    assert alert.annotations["summary"].startswith("BackOff on Pod shop/web-5f6d7c8b9-abcde: Back-off")
    assert alert.annotations["event"] == "shop/web-5f6d7c8b9-abcde.17a1"
    assert len(alert.fingerprint or "") == 16 and signal.namespace == "shop"
    # The workload is resolved from the pod like for a kube-state-metrics alert.
    assert resolve_from_labels(alert.labels, "c").target.name == "web"


def test_repeats_of_an_event_keep_one_fingerprint_and_start() -> None:
    first = event_to_signal(event(count=1), CONFIG)
    bumped = event(count=7, lastTimestamp="2026-11-26T04:20:00Z", message="Back-off restarting failed container x7")
    again = event_to_signal(bumped, CONFIG)
    # Another Event object for the same pod and reason (the kubelet's correlator may start a new one).
    other = event_to_signal(event(firstTimestamp="2026-11-26T05:00:00Z", lastTimestamp="2026-11-26T05:00:00Z",
                                  metadata={"name": "x.2", "namespace": "shop"}), CONFIG)
    assert first and again and other
    assert first.alert.fingerprint == again.alert.fingerprint == other.alert.fingerprint
    assert first.alert.starts_at == again.alert.starts_at  # → the same dedup key: one row
    assert (again.count, again.occurred_at.minute) == (7, 20)
    # Another pod, or another reason on the same pod, is another alert.
    assert event_to_signal(event(uid="uid-2"), CONFIG).alert.fingerprint != first.alert.fingerprint
    image = event_to_signal(event("Failed", "Error: ImagePullBackOff"), CONFIG)
    assert image.alert.fingerprint != first.alert.fingerprint


def test_the_event_client_model_maps_like_the_api_json() -> None:
    model = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="db-0.1", namespace="shop"),
        involved_object=client.V1ObjectReference(kind="Pod", name="db-0", namespace="shop", uid="u-9"),
        reason="OOMKilling", message="Memory cgroup out of memory", type="Warning", count=2,
        first_timestamp=datetime(2026, 11, 26, 4, tzinfo=timezone.utc))
    signal = event_to_signal(model, CONFIG)
    assert signal is not None
    assert (signal.alert.labels["alertname"], signal.alert.labels["reason"]) == ("KubeContainerOOMKilled", "OOMKilled")
    assert signal.alert.labels["pod"] == "db-0" and signal.count == 2


def test_the_untrusted_message_is_cleaned_and_truncated() -> None:
    config = EventSourceConfig(max_message_chars=64)
    hostile = "Back-off\x00 restarting\x1b[31m failed\r container " + "A" * 10_000
    signal = event_to_signal(event(message=hostile), config)
    assert signal is not None
    description = signal.alert.annotations["description"]
    assert len(description) == 64 and description.endswith("…")
    assert not any(ord(c) < 32 and c not in "\n\t" for c in description)
    assert len(signal.alert.annotations["summary"]) <= 200
    assert all("\x00" not in v for v in signal.alert.labels.values())
    assert clean_text("line1\nline2\tx", 100) == "line1\nline2\tx"
    # Label values are one line, whatever the event says; an object name that is not a Kubernetes name
    # (no API server would hold one) makes no alert: the processor could not target it.
    assert event_to_signal(event(name="web\n\tx"), CONFIG) is None


@pytest.mark.parametrize("body", [
    event(type_="Normal"),  # Normal events are never signals
    event(reason="Pulled", message="Container image already present"),  # reason not configured
    event(reason="SomethingNew"),
    event(reason="Failed", message="Error: context deadline exceeded"),  # Failed without a known waiting reason
    event(reason="Unhealthy", message="Liveness probe failed: HTTP 500", count=9),  # liveness ends in BackOff
    event(reason="Unhealthy", message="Readiness probe failed: HTTP 503", count=2),  # below min_count (3)
    event(firstTimestamp=None, lastTimestamp=None),  # nothing says when
    event(involvedObject={"kind": "Pod", "uid": "u"}),  # nothing says what
])
def test_events_that_are_not_signals_are_ignored(body: dict[str, Any]) -> None:
    assert event_to_signal(body, CONFIG) is None


def test_reason_labels_and_targets_per_event_reason() -> None:
    cases = {
        ("Failed", "Error: ErrImagePull"): ("KubeContainerWaiting", "ErrImagePull"),
        ("Failed", 'Failed to pull image "x:1": not found'): ("KubeContainerWaiting", "ErrImagePull"),
        ("Failed", "Error: CreateContainerConfigError"): ("KubeContainerWaiting", "CreateContainerConfigError"),
        ("FailedScheduling", "0/3 nodes are available: 3 Insufficient memory."): ("KubePodNotReady", "Unschedulable"),
        ("FailedMount", "MountVolume.SetUp failed"): ("KubeContainerWaiting", "FailedMount"),
        ("FailedAttachVolume", "AttachVolume.Attach failed"): ("KubeContainerWaiting", "FailedAttachVolume"),
        ("Unhealthy", "Readiness probe failed: HTTP 503"): ("KubePodNotReady", "Unhealthy"),
    }
    for (reason, message), expected in cases.items():
        signal = event_to_signal(event(reason, message, count=3), CONFIG)
        assert signal is not None, reason
        assert (signal.alert.labels["alertname"], signal.alert.labels["reason"]) == expected, (reason, message)
    assert signal_reason("BackOff", 'Back-off pulling image "x"') == "ImagePullBackOff"

    # Evicted: the node evicts; the incident is the node's and the pod is named for context.
    evicted = event_to_signal(event("Evicted", "The node was low on resource: memory."), CONFIG)
    assert evicted.alert.labels["alertname"] == "KubeNodeEviction" and evicted.alert.labels["node"] == "node-1"
    assert "pod" not in evicted.alert.labels and evicted.alert.labels["evicted_pod"] == "web-5f6d7c8b9-abcde"
    assert resolve_from_labels(evicted.alert.labels, "c").target.kind == "Node"

    # A kernel OOM on a node (node-problem-detector): cluster-scoped, no namespace label.
    node = event("OOMKilling", "Killed process 123 (java)", kind="Node", name="node-7", uid="node-7")
    node["involvedObject"].pop("fieldPath")
    oom = event_to_signal(node, CONFIG)
    assert oom.namespace is None and "namespace" not in oom.alert.labels and oom.alert.labels["node"] == "node-7"

    deployment = event_to_signal(event("FailedMount", "x", kind="Deployment", name="web"), CONFIG)
    assert deployment.alert.labels["deployment"] == "web"
    odd = event_to_signal(event("FailedMount", "x", kind="Widget", name="w"), CONFIG)
    assert odd.alert.labels["involved_object"] == "Widget/w"


def test_the_default_alert_names_are_names_the_rules_know() -> None:
    known = {name for rule in yaml.safe_load(RULES.read_text())["rules"] for name in rule.get("alerts", [])}
    assert set(CONFIG.reasons.values()) <= known


def test_config_merges_reasons_and_is_off_by_default() -> None:
    assert KubernautConfig().processing.events.enabled is False
    custom = EventSourceConfig(reasons={"BackOff": "", "NodeNotReady": "KubeNodeNotReady"}, min_count={"BackOff": 3})
    assert "BackOff" not in custom.reasons and custom.reasons["FailedScheduling"] == "KubePodNotReady"
    assert event_to_signal(event(), custom) is None
    node = event_to_signal(event("NodeNotReady", "Node is not ready", kind="Node", name="n1"), custom)
    assert node.alert.labels["alertname"] == "KubeNodeNotReady" and node.alert.labels["reason"] == "NodeNotReady"
    counted = EventSourceConfig(min_count={"BackOff": 3})
    assert event_to_signal(event(count=2), counted) is None and event_to_signal(event(count=3), counted)
    series = copy.deepcopy(event(count=0))
    series["series"] = {"count": 4, "lastObservedTime": "2026-11-26T04:30:00.123456Z"}
    signal = event_to_signal(series, counted)
    assert signal.count == 4 and signal.occurred_at.minute == 30


class FakeStream:
    """A watch response: the given lines, then blocks like an idle watch until shut down."""

    def __init__(self, lines: list[dict[str, Any]], *, end: bool = False) -> None:
        self.lines = [json.dumps(line).encode() + b"\n" for line in lines]
        self.end = end
        self.unblocked = threading.Event()
        self.closed = False

    def stream(self, amt: Any = None, decode_content: Any = None) -> Any:
        yield from self.lines
        if not self.end:
            self.unblocked.wait(30)
            raise ConnectionError("shut down")

    def shutdown(self) -> None:
        self.unblocked.set()

    def close(self) -> None:
        self.closed = True
        self.unblocked.set()

    def release_conn(self) -> None:
        pass


async def test_the_watch_loop_relists_on_410_backs_off_on_errors_and_stops_cleanly() -> None:
    config = EventSourceConfig(enabled=True, backoff_initial_s=0.01, backoff_max_s=0.02, resolve_after_s=0)
    source = EventSource(client.ApiClient(), None, config)  # type: ignore[arg-type]
    handled: list[str] = []
    lists: list[str] = []
    watches: list[str | None] = []
    streams: list[FakeStream] = []
    added = event()
    modified = event(count=2, metadata={"name": "m", "namespace": "shop", "resourceVersion": "12"})

    async def handle(obj: Any) -> bool:
        handled.append(obj["metadata"].get("resourceVersion"))
        return False

    def list_page(namespace: str | None, token: str | None) -> dict[str, Any]:
        lists.append(str(namespace))
        return {"metadata": {"resourceVersion": f"{len(lists)}0"}, "items": [added]}

    def open_watch(namespace: str | None, rv: str | None) -> FakeStream:
        watches.append(rv)
        if len(watches) == 1:  # resourceVersion too old: list again
            stream = FakeStream([{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}])
        elif len(watches) == 2:  # an API error: back off, then resume from the same resourceVersion
            raise ApiException(status=500, reason="boom")
        elif len(watches) == 3:  # events, a bookmark, then the server ends the watch
            stream = FakeStream([{"type": "MODIFIED", "object": modified},
                                 {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}}], end=True)
        else:  # an idle watch, open until stop()
            stream = FakeStream([])
        streams.append(stream)
        return stream

    source.handle = handle  # type: ignore[method-assign]
    source._list_page = list_page  # type: ignore[method-assign]
    source._open_watch = open_watch  # type: ignore[method-assign]
    source.start()
    await eventually(lambda: _true(len(watches) >= 4), timeout=10, what="the fourth watch")
    await asyncio.wait_for(source.stop(), timeout=5)  # unblocks the thread reading the idle watch
    assert lists == ["None", "None"]  # the first list and the relist after 410
    assert watches[:4] == ["10", "20", "20", "15"]  # resumed from the list, the last event, the bookmark
    assert handled == ["42", "42", "12"]
    assert all(s.closed for s in streams)


async def _true(value: bool) -> bool:
    return value
