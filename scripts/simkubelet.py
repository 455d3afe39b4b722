#!/usr/bin/env python3
"""Simulated kubelet for the kubernaut test control plane (scripts/testenv.sh).

There is no container runtime: this process plays the kubelet's part towards the API server.

* registers N Nodes (labelled ``sim.kubernaut.io/node=true``) with capacity/allocatable and keeps
  them Ready: node status heartbeat plus a Lease in ``kube-node-lease``;
* marks pods bound to its nodes Running/Ready with container statuses, a podIP and Events;
* finishes graceful deletions (a pod with a deletionTimestamp is deleted with grace 0);
* shows failures on request, from the pod annotation ``sim.kubernaut.io/state`` (copied from a
  workload's pod template to its pods):

  ``CrashLoopBackOff``  waiting CrashLoopBackOff, growing restartCount, lastState terminated Error/1
  ``OOMKilled``         as above with lastState terminated OOMKilled/137
  ``ImagePullBackOff``  waiting ImagePullBackOff, never started (phase Pending on a new pod)
  ``NotReady``          running but not ready, with Warning ``Unhealthy`` events (one per probe
                        period, counted up like the kubelet's event aggregation)

  ``sim.kubernaut.io/container: <name>`` limits the state to one container. No annotation (or
  ``Running``) gives Running/Ready again. More pod annotations:

  ``sim.kubernaut.io/exit-code: "127"``   exit code of the crashing container (default 1; reason
                                          ``Error``, ``Completed`` for 0; OOMKilled is always 137)
  ``sim.kubernaut.io/message: "..."``     ``lastState.terminated.message`` of the crashed container
                                          (what ``terminationMessagePolicy: FallbackToLogsOnError``
                                          puts there: the log tail; the last 4096 bytes are kept)
  ``sim.kubernaut.io/probe-message: ...`` for ``NotReady``, the ``Unhealthy`` event text (default
                                          ``Readiness probe failed: HTTP probe failed with
                                          statuscode: 503``)

* pods that do not restart (Jobs): ``sim.kubernaut.io/complete: "true"`` ends them Succeeded
  (``"failed"``: Failed, exit 1 or ``sim.kubernaut.io/exit-code``), after
  ``sim.kubernaut.io/run-seconds`` (default 0); without it they stay Running.
* reproduces, without annotations, what the kubelet does with a broken pod spec:

  - a ConfigMap/Secret volume (``configMap.name``/``secret.secretName``, not ``optional``) that does
    not exist, or whose ``items`` name a missing key: the pod stays Pending, its containers waiting
    ``ContainerCreating`` (``PodInitializing`` with init containers), no podIP, Warning
    ``FailedMount`` events ``MountVolume.SetUp failed for volume "v" : configmap "x" not found``;
  - env (``envFrom``, ``valueFrom.configMapKeyRef``/``secretKeyRef``, not ``optional``) naming a
    missing ConfigMap/Secret or key: the container waits ``CreateContainerConfigError`` with the
    kubelet's message (``configmap "x" not found``, ``couldn't find key k in ConfigMap ns/x``,
    ``secret "y" not found``) and Warning ``Failed`` events ``Error: <message>``;
  - a readiness probe (``httpGet``/``tcpSocket``) whose port is no declared port of the pod's
    containers (numbers) or of the container (names), judged only when the container declares
    ports: running, never ready, Warning ``Unhealthy`` events ``Readiness probe failed: Get
    "http://<podIP>:<port><path>": dial tcp <podIP>:<port>: connect: connection refused``.

  Both checks are made where the kubelet makes them: volumes before the pod's first container
  starts, env when a container is (re)created; a running container is left alone. The object
  appearing lets the pod start normally. ConfigMaps and Secrets (names and keys only) are watched;
  a miss is confirmed with a GET.
* node annotation ``sim.kubernaut.io/node-state`` on its own nodes (comma-separated list):
  ``NotReady`` (Ready False, reason ``KubeletNotReady``, "container runtime is down"; pod statuses
  on that node are then left alone, as a kubelet without its runtime does; deletions still
  finish), ``MemoryPressure``, ``DiskPressure``, ``PIDPressure`` (that condition True, Ready stays
  True). Node annotations are polled every ``--node-poll-interval`` seconds (default 2) and a
  change is written at once; otherwise node status is written every ``--status-interval``.

Status is written only when it differs from what the server has, so the process never fights with
itself; all bookkeeping (restart counts, times) lives in the pod status, so a restart of this
process continues where the last one stopped. (Recurring events are counted up on the Event
objects themselves: only their timing is kept in memory.)
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
import json
import logging
import random
import signal
import sys
import threading
import time
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

ANN_STATE = "sim.kubernaut.io/state"
ANN_CONTAINER = "sim.kubernaut.io/container"
ANN_COMPLETE = "sim.kubernaut.io/complete"
ANN_RUN_SECONDS = "sim.kubernaut.io/run-seconds"
ANN_EXIT_CODE = "sim.kubernaut.io/exit-code"
ANN_MESSAGE = "sim.kubernaut.io/message"
ANN_PROBE_MESSAGE = "sim.kubernaut.io/probe-message"
ANN_NODE_STATE = "sim.kubernaut.io/node-state"
NODE_LABEL = "sim.kubernaut.io/node"
KUBELET_VERSION = "v1.20.2"
LEASE_NS = "kube-node-lease"
LEASE_DURATION = 40

FAILURE_STATES = {"CrashLoopBackOff", "OOMKilled", "ImagePullBackOff", "NotReady"}
DEFAULT_PROBE_MESSAGE = "Readiness probe failed: HTTP probe failed with statuscode: 503"
MAX_TERMINATION_MESSAGE = 4096  # bytes, like the kubelet (kuberuntime maxMsgSize)
CONFIG_ERROR_EVENT_INTERVAL = 10.0  # the kubelet retries the container creation on each pod sync
FAILED_MOUNT_EVENT_INTERVAL = 15.0

# Node condition type -> (healthy status, reason, message), (state status, reason, message).
NODE_CONDITIONS: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "MemoryPressure": (
        ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    ),
    "DiskPressure": (
        ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("True", "KubeletHasDiskPressure", "kubelet has disk pressure"),
    ),
    "PIDPressure": (
        ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
    ),
    "Ready": (
        ("True", "KubeletReady", "kubelet is posting ready status (simulated)"),
        ("False", "KubeletNotReady", "container runtime is down"),
    ),
}
NODE_STATES = {"NotReady": "Ready", "MemoryPressure": "MemoryPressure", "DiskPressure": "DiskPressure",
               "PIDPressure": "PIDPressure"}

log = logging.getLogger("simkubelet")

Pod = dict[str, Any]


def ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def micro_ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e6):06d}Z"


def parse_ts(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return float(calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


def clip_tail(text: str, limit: int = MAX_TERMINATION_MESSAGE) -> str:
    """The last ``limit`` bytes of ``text`` (a log tail), cut on a character boundary."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[-limit:].decode("utf-8", "ignore")


def exit_code(annotations: dict[str, str], default: int) -> int:
    """``sim.kubernaut.io/exit-code`` (0-255), else ``default``."""
    try:
        code = int(annotations.get(ANN_EXIT_CODE, "").strip())
    except ValueError:
        return default
    return code if 0 <= code <= 255 else default


def data_keys(obj: dict) -> frozenset[str]:
    """The keys of a ConfigMap/Secret: ``data`` keys as they are, ``binaryData`` keys after a NUL."""
    return frozenset(obj.get("data") or {}) | frozenset("\0" + k for k in obj.get("binaryData") or {})


def node_states(node: dict) -> set[str]:
    """The simulated states a Node's ``sim.kubernaut.io/node-state`` annotation asks for."""
    value = ((node.get("metadata") or {}).get("annotations") or {}).get(ANN_NODE_STATE, "")
    return {s.strip() for s in value.split(",") if s.strip() in NODE_STATES}


def rv_int(obj: Pod) -> int:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return 0


class SimKubelet:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.nodes = {f"{args.prefix}-{i}": i for i in range(1, args.nodes + 1)}
        self.pods: dict[tuple[str, str], Pod] = {}
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.started = time.time()
        self.node_uids: dict[str, str] = {}
        self.node_states: dict[str, set[str]] = {n: set() for n in self.nodes}
        # ConfigMap/Secret cache: kind -> (namespace, name) -> (resourceVersion, keys); kinds listed.
        self.refs: dict[str, dict[tuple[str, str], tuple[int, frozenset[str]]]] = {"configmap": {}, "secret": {}}
        self.refs_synced: set[str] = set()
        self.refs_lock = threading.Lock()
        # Recurring events: (namespace, event name) -> (last emitted, count); timing only.
        self.recurring: dict[tuple[str, str], tuple[float, int]] = {}

    # -- clients --------------------------------------------------------------------------------
    def api_client(self) -> client.ApiClient:
        # One ApiClient per thread.
        return config.new_client_from_config(config_file=self.args.kubeconfig)

    # -- nodes ----------------------------------------------------------------------------------
    def node_ip(self, node: str) -> str:
        return f"10.240.0.{self.nodes[node] + 1}"

    def node_conditions(self, node: str, now: float, old: dict | None = None) -> list[dict]:
        states = self.node_states.get(node, set())
        bad = {NODE_STATES[s] for s in states}
        old_conds = {c["type"]: c for c in ((old or {}).get("status") or {}).get("conditions") or []}
        out = []
        for type_, (healthy, failing) in NODE_CONDITIONS.items():
            status, reason, message = failing if type_ in bad else healthy
            prev = old_conds.get(type_)
            if prev is None:
                since = self.started if type_ not in bad else now
            elif prev.get("status") == status:
                since = parse_ts(prev.get("lastTransitionTime")) or self.started
            else:
                since = now
            out.append(
                {
                    "type": type_,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": ts(now),
                    "lastTransitionTime": ts(since),
                }
            )
        return out

    @staticmethod
    def node_conditions_differ(node: dict, want: list[dict]) -> bool:
        def key(c: dict) -> tuple:
            return c.get("type"), c.get("status"), c.get("reason"), c.get("message")

        have = {key(c) for c in (node.get("status") or {}).get("conditions") or []}
        return not {key(c) for c in want} <= have

    def node_status(self, node: str, now: float, old: dict | None = None) -> dict:
        a = self.args
        resources = {"cpu": a.cpu, "memory": a.memory, "pods": str(a.pods), "ephemeral-storage": "100Gi"}
        return {
            "capacity": resources,
            "allocatable": resources,
            "conditions": self.node_conditions(node, now, old),
            "addresses": [
                {"type": "InternalIP", "address": self.node_ip(node)},
                {"type": "Hostname", "address": node},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": sha(node)[:32],
                "systemUUID": sha("uuid" + node)[:32],
                "bootID": sha(f"boot{node}{self.started}")[:32],
                "kernelVersion": "6.1.0-sim",
                "osImage": "Simulated Linux",
                "containerRuntimeVersion": "containerd://1.4.0-sim",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    def register_node(self, core: client.CoreV1Api, node: str) -> None:
        idx = self.nodes[node]
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node,
                "labels": {
                    "kubernetes.io/hostname": node,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "beta.kubernetes.io/arch": "amd64",
                    "node.kubernetes.io/instance-type": "sim.large",
                    "topology.kubernetes.io/zone": f"sim-zone-{'abc'[(idx - 1) % 3]}",
                    NODE_LABEL: "true",
                },
            },
            "spec": {},
            "status": self.node_status(node, time.time()),
        }
        try:
            core.create_node(body)
            log.info("registered node %s", node)
        except ApiException as e:
            if e.status != 409:
                raise

    def heartbeat_loop(self) -> None:
        api = self.api_client()
        core = client.CoreV1Api(api)
        coord = client.CoordinationV1Api(api)
        last_status = last_lease = 0.0
        while not self.stop.is_set():
            now = time.time()
            try:
                # Node annotations are polled often so that a node-state change shows within seconds;
                # the status itself is written only when due or when its conditions change. (All nodes
                # are listed: nodes created before this process registers them lack NODE_LABEL.)
                current = {
                    n["metadata"]["name"]: n
                    for n in json.loads(core.list_node(_preload_content=False).data)["items"]
                    if n["metadata"]["name"] in self.nodes
                }
                due = now - last_status >= self.args.status_interval
                for node in self.nodes:
                    cur = current.get(node)
                    states = node_states(cur) if cur else set()
                    if states != self.node_states.get(node):
                        log.info("node %s: simulated state %s", node, ",".join(sorted(states)) or "normal")
                        self.node_states[node] = states
                    if due or cur is None or self.node_conditions_differ(cur, self.node_conditions(node, now, cur)):
                        self.update_node_status(core, node, now, cur)
                if due:
                    last_status = now
                if now - last_lease >= self.args.lease_interval:
                    for node in self.nodes:
                        self.renew_lease(coord, node, now)
                    last_lease = now
            except Exception as e:  # keep beating whatever happens (apiserver restart, ...)
                log.warning("heartbeat failed: %s", e)
                last_status = last_lease = 0.0
                self.stop.wait(1)
                continue
            self.stop.wait(min(self.args.node_poll_interval, self.args.lease_interval))

    def update_node_status(self, core: client.CoreV1Api, node: str, now: float, old: dict | None = None) -> None:
        try:
            resp = core.patch_node_status(node, {"status": self.node_status(node, now, old)})
        except ApiException as e:
            if e.status != 404:
                raise
            self.register_node(core, node)
            resp = core.patch_node_status(node, {"status": self.node_status(node, now)})
        self.node_uids[node] = resp.metadata.uid

    def renew_lease(self, coord: client.CoordinationV1Api, node: str, now: float) -> None:
        spec = {"holderIdentity": node, "leaseDurationSeconds": LEASE_DURATION, "renewTime": micro_ts(now)}
        try:
            coord.patch_namespaced_lease(node, LEASE_NS, {"spec": spec})
        except ApiException as e:
            if e.status != 404:
                raise
            meta: dict[str, Any] = {"name": node, "namespace": LEASE_NS}
            if node in self.node_uids:
                meta["ownerReferences"] = [
                    {"apiVersion": "v1", "kind": "Node", "name": node, "uid": self.node_uids[node]}
                ]
            coord.create_namespaced_lease(
                LEASE_NS,
                {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec},
            )

    # -- pods: container status ----------------------------------------------------------------
    def pod_ip(self, pod: Pod) -> str:
        h = int(sha(pod["metadata"]["uid"])[:8], 16)
        return f"10.244.{self.nodes[pod['spec']['nodeName']]}.{h % 250 + 2}"

    def container_status(
        self,
        pod: Pod,
        c: dict,
        old: dict,
        state: str,
        now: float,
        config_error: str | None = None,
    ) -> dict:
        name, image = c["name"], c["image"]
        uid = pod["metadata"]["uid"]
        restarts = old.get("restartCount", 0)
        old_state = old.get("state") or {}
        old_last = old.get("lastState") or {}
        repo = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image.split("@")[0]
        image_id = f"docker-pullable://{repo}@sha256:{sha(image)}"

        def cid(n: int) -> str:
            return "containerd://" + sha(f"{uid}/{name}/{n}")

        base = {"name": name, "image": image, "imageID": image_id, "restartCount": restarts}
        if config_error and "running" not in old_state:
            # The kubelet could not build the container's config (env from a missing ConfigMap/Secret):
            # it is not created; what ran before (lastState) stays.
            out = base | {
                "imageID": image_id if old_last else "",
                "state": {"waiting": {"reason": "CreateContainerConfigError", "message": config_error}},
                "ready": False,
                "started": False,
            }
            if old_last:
                out["lastState"] = old_last
            return out
        if state in ("CrashLoopBackOff", "OOMKilled"):
            ann = pod["metadata"].get("annotations") or {}
            if state == "OOMKilled":
                reason, code = "OOMKilled", 137
            else:
                code = exit_code(ann, 1)
                reason = "Error" if code else "Completed"
            message = ann.get(ANN_MESSAGE)
            last = old_last.get("terminated")
            crashing = (old_state.get("waiting") or {}).get("reason") == "CrashLoopBackOff"
            finished = parse_ts(last.get("finishedAt")) if last else None
            if not (crashing and last and last.get("reason") == reason and finished is not None) or (
                now - finished >= self.args.crash_interval
            ):
                restarts += 1
                last = {
                    "exitCode": code,
                    "reason": reason,
                    "startedAt": ts(now - 1),
                    "finishedAt": ts(now),
                    "containerID": cid(restarts),
                }
                if message:
                    last["message"] = clip_tail(message)
            backoff = min(10 * 2 ** max(restarts - 1, 0), 300)
            return base | {
                "restartCount": restarts,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {backoff}s restarting failed container={name} "
                        f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({uid})",
                    }
                },
                "lastState": {"terminated": last},
                "ready": False,
                "started": False,
                "containerID": last["containerID"],
            }
        if state == "ImagePullBackOff":
            out = base | {
                "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}},
                "ready": False,
                "started": False,
            }
            if old_last:
                out["lastState"] = old_last
            return out
        running = old_state.get("running")
        out = base | {
            "state": {"running": {"startedAt": running["startedAt"] if running else ts(now)}},
            "ready": state != "NotReady",
            "started": True,
            "containerID": cid(restarts),
        }
        if old_last:
            out["lastState"] = old_last
        return out

    # -- pods: what the kubelet finds wrong with a spec -----------------------------------------
    def ref_keys(
        self, core: client.CoreV1Api | None, kind: str, ns: str, name: str, need: tuple[str, ...] = ()
    ) -> frozenset[str] | None:
        """Keys of ConfigMap/Secret ``ns/name`` (binaryData keys prefixed with NUL), None if missing.

        Answered from the watch cache; a miss (object or one of ``need``) is confirmed with a GET so
        that an object created just before the pod is never reported missing."""
        with self.refs_lock:
            hit = self.refs[kind].get((ns, name)) if kind in self.refs_synced else None
        if hit is not None and all(k in hit[1] or "\0" + k in hit[1] for k in need):
            return hit[1]
        if core is None:
            return hit[1] if hit else None
        read = core.read_namespaced_config_map if kind == "configmap" else core.read_namespaced_secret
        try:
            obj = json.loads(read(name, ns, _preload_content=False).data)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return self.ref_store(kind, obj)

    def ref_store(self, kind: str, obj: dict) -> frozenset[str]:
        keys = data_keys(obj)
        meta = obj["metadata"]
        key, rv = (meta["namespace"], meta["name"]), rv_int(obj)
        with self.refs_lock:
            cur = self.refs[kind].get(key)
            if cur is None or cur[0] <= rv:
                self.refs[kind][key] = (rv, keys)
        return keys

    def env_error(self, core: client.CoreV1Api | None, ns: str, c: dict) -> str | None:
        """The kubelet's error building container ``c``'s environment (makeEnvironmentVariables)."""
        for src in c.get("envFrom") or []:
            for field, kind in (("configMapRef", "configmap"), ("secretRef", "secret")):
                ref = src.get(field)
                if ref is None or ref.get("optional"):
                    continue
                if self.ref_keys(core, kind, ns, ref.get("name") or "") is None:
                    return f'{kind} "{ref.get("name") or ""}" not found'
        for env in c.get("env") or []:
            value_from = env.get("valueFrom") or {}
            for field, kind, title in (
                ("configMapKeyRef", "configmap", "ConfigMap"),
                ("secretKeyRef", "secret", "Secret"),
            ):
                ref = value_from.get(field)
                if ref is None or ref.get("optional"):
                    continue
                name, key = ref.get("name") or "", ref.get("key") or ""
                keys = self.ref_keys(core, kind, ns, name, (key,))
                if keys is None:
                    return f'{kind} "{name}" not found'
                if key not in keys:  # env reads ConfigMap.data only, not binaryData
                    return f"couldn't find key {key} in {title} {ns}/{name}"
        return None

    def volume_errors(self, core: client.CoreV1Api | None, pod: Pod) -> list[str]:
        """FailedMount messages for ConfigMap/Secret volumes the kubelet could not set up."""
        ns = pod["metadata"]["namespace"]
        out = []
        for vol in pod["spec"].get("volumes") or []:
            for field, kind, name_field, missing_key in (
                ("configMap", "configmap", "name", "configmap references non-existent config key: {}"),
                ("secret", "secret", "secretName", "references non-existent secret key: {}"),
            ):
                src = vol.get(field)
                if src is None or src.get("optional"):
                    continue
                name = src.get(name_field) or ""
                items = tuple(i.get("key") or "" for i in src.get("items") or [])
                keys = self.ref_keys(core, kind, ns, name, items)
                if keys is None:
                    error = f'{kind} "{name}" not found'
                else:
                    absent = [k for k in items if k not in keys and "\0" + k not in keys]
                    if not absent:
                        continue
                    error = missing_key.format(absent[0])
                out.append(f'MountVolume.SetUp failed for volume "{vol.get("name")}" : {error}')
        return out

    @staticmethod
    def probe_failure(pod: Pod, c: dict, ip: str) -> str | None:
        """The Unhealthy message of a readiness probe aimed at a port nothing in the pod declares.

        Judged only for containers that declare ports: numbers are looked up among all the pod's
        containers (they share the network namespace), names among the container's own ports."""
        own = c.get("ports") or []
        probe = c.get("readinessProbe") or {}
        action = probe.get("httpGet") or probe.get("tcpSocket")
        if not own or not action or action.get("port") is None:
            return None
        port = action["port"]
        if isinstance(port, str) and not port.isdigit():
            if any(p.get("name") == port for p in own):
                return None
            return f'Readiness probe errored: strconv.Atoi: parsing "{port}": invalid syntax'
        number = int(port)
        containers = pod["spec"].get("containers") or []
        declared = {p.get("containerPort") for ctr in containers for p in ctr.get("ports") or []}
        if number in declared:
            return None
        host = action.get("host") or ip
        hostport = f"[{host}]:{number}" if ":" in host else f"{host}:{number}"
        refused = f"dial tcp {hostport}: connect: connection refused"
        if "httpGet" in probe:
            scheme = (action.get("scheme") or "HTTP").lower()
            return f'Readiness probe failed: Get "{scheme}://{hostport}{action.get("path") or ""}": {refused}'
        return f"Readiness probe failed: {refused}"

    @staticmethod
    def container_started(cs: dict) -> bool:
        """Whether the kubelet got past mounting volumes for this container's pod."""
        state = cs.get("state") or {}
        waiting = (state.get("waiting") or {}).get("reason")
        return (
            "running" in state
            or "terminated" in state
            or bool(cs.get("lastState"))
            or cs.get("restartCount", 0) > 0
            or (waiting is not None and waiting not in ("ContainerCreating", "PodInitializing"))
        )

    # -- pods: desired state --------------------------------------------------------------------
    def desired_status(self, pod: Pod, now: float, core: client.CoreV1Api | None = None) -> dict | None:
        return self.plan(pod, now, core)[0]

    def plan(self, pod: Pod, now: float, core: client.CoreV1Api | None = None) -> tuple[dict | None, list[tuple]]:
        """The pod status the kubelet would report, and the recurring events it would emit
        (``(type, reason, message, fieldPath, interval)``)."""
        meta, spec = pod["metadata"], pod["spec"]
        status = pod.get("status") or {}
        if spec.get("nodeName") not in self.nodes or status.get("phase") in ("Succeeded", "Failed"):
            return None, []
        if "NotReady" in self.node_states.get(spec["nodeName"], set()):
            return None, []  # the runtime is down: nothing is synced
        ns = meta["namespace"]
        ann = meta.get("annotations") or {}
        state = ann.get(ANN_STATE, "").strip()
        if state not in FAILURE_STATES:
            state = ""
        target = ann.get(ANN_CONTAINER)
        start_time = status.get("startTime") or ts(now)
        old_cs = {c["name"]: c for c in status.get("containerStatuses") or []}
        ip = status.get("podIP") or self.pod_ip(pod)
        events: list[tuple] = []
        init_containers = spec.get("initContainers") or []

        mount_errors = [] if any(map(self.container_started, old_cs.values())) else self.volume_errors(core, pod)
        config_errors: dict[str, str] = {}
        if not mount_errors:
            for c in spec.get("containers", []):
                if "running" not in (old_cs.get(c["name"], {}).get("state") or {}):
                    error = self.env_error(core, ns, c)
                    if error:
                        config_errors[c["name"]] = error

        completion = ""
        if spec.get("restartPolicy", "Always") != "Always" and not mount_errors and not config_errors:
            completion = ann.get(ANN_COMPLETE, "").strip().lower()
            try:
                run_for = float(ann.get(ANN_RUN_SECONDS, "0") or 0)
            except ValueError:
                run_for = 0.0
            if completion not in ("true", "failed") or now - (parse_ts(start_time) or now) < run_for:
                completion = ""

        statuses = []
        init_statuses = []
        if mount_errors:
            # Volumes are set up before anything runs: no sandbox (no podIP), nothing started.
            waiting = "PodInitializing" if init_containers else "ContainerCreating"

            def creating(c: dict) -> dict:
                return {
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": "",
                    "restartCount": 0,
                    "state": {"waiting": {"reason": waiting}},
                    "ready": False,
                }

            statuses = [creating(c) | {"started": False} for c in spec.get("containers", [])]
            init_statuses = [creating(c) for c in init_containers]
            events = [("Warning", "FailedMount", m, None, FAILED_MOUNT_EVENT_INTERVAL) for m in mount_errors]
        for c in [] if mount_errors else spec.get("containers", []):
            old = old_cs.get(c["name"], {})
            if completion:
                code = 0 if completion == "true" else (exit_code(ann, 1) or 1)
                started_at = ((old.get("state") or {}).get("running") or {}).get("startedAt") or start_time
                terminated = {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": started_at,
                    "finishedAt": ts(now),
                    "containerID": "containerd://" + sha(f"{meta['uid']}/{c['name']}/0"),
                }
                if code and ann.get(ANN_MESSAGE):
                    terminated["message"] = clip_tail(ann[ANN_MESSAGE])
                statuses.append(
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": f"docker-pullable://{c['image']}@sha256:{sha(c['image'])}",
                        "restartCount": old.get("restartCount", 0),
                        "state": {"terminated": terminated},
                        "ready": False,
                        "started": False,
                        "containerID": "containerd://" + sha(f"{meta['uid']}/{c['name']}/0"),
                    }
                )
                continue
            cstate = state if (not target or target == c["name"]) else ""
            error = config_errors.get(c["name"])
            probe_message = None
            if cstate == "NotReady":
                probe_message = ann.get(ANN_PROBE_MESSAGE) or DEFAULT_PROBE_MESSAGE
            elif not cstate:
                probe_message = self.probe_failure(pod, c, ip)
                if probe_message:
                    cstate = "NotReady"
            cs = self.container_status(pod, c, old, cstate, now, error)
            statuses.append(cs)
            path = f"spec.containers{{{c['name']}}}"
            waiting = cs["state"].get("waiting") or {}
            if waiting.get("reason") == "CreateContainerConfigError":
                events.append(("Warning", "Failed", f"Error: {waiting['message']}", path, CONFIG_ERROR_EVENT_INTERVAL))
            elif probe_message and "running" in cs["state"] and not cs["ready"]:
                try:
                    period = float((c.get("readinessProbe") or {}).get("periodSeconds") or 10)
                except (TypeError, ValueError):
                    period = 10.0
                events.append(("Warning", "Unhealthy", probe_message, path, max(period, 1.0)))

        for c in [] if mount_errors else init_containers:
            cid = "containerd://" + sha(f"{meta['uid']}/{c['name']}/init")
            init_statuses.append(
                {
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": f"docker-pullable://{c['image']}@sha256:{sha(c['image'])}",
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": start_time,
                            "finishedAt": start_time,
                            "containerID": cid,
                        }
                    },
                    "lastState": {},
                    "ready": True,
                    "containerID": cid,
                }
            )

        if completion:
            phase = "Succeeded" if completion == "true" else "Failed"
        elif all("waiting" in s["state"] and s["restartCount"] == 0 and not s.get("lastState") for s in statuses):
            phase = "Pending"
        else:
            phase = "Running"

        unready = [s["name"] for s in statuses if not s["ready"]]
        ready = "True" if statuses and not unready else "False"
        old_conds = {c["type"]: c for c in status.get("conditions") or []}

        def cond(type_: str, value: str, reason: str | None = None, message: str | None = None) -> dict:
            old = old_conds.get(type_, {})
            c = {
                "type": type_,
                "status": value,
                "lastProbeTime": None,
                "lastTransitionTime": old.get("lastTransitionTime") if old.get("status") == value else ts(now),
            }
            if value != "True" and reason:
                c["reason"], c["message"] = reason, message
            return c

        if completion:
            not_ready = ("PodCompleted", None)
        else:
            not_ready = ("ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]")
        if mount_errors and init_containers:
            names = " ".join(c["name"] for c in init_containers)
            incomplete = f"containers with incomplete status: [{names}]"
            initialized = cond("Initialized", "False", "ContainersNotInitialized", incomplete)
        else:
            initialized = cond("Initialized", "True")
        desired = {
            "phase": phase,
            "hostIP": self.node_ip(spec["nodeName"]),
            "startTime": start_time,
            "conditions": [
                initialized,
                cond("Ready", ready, *not_ready),
                cond("ContainersReady", ready, *not_ready),
                cond("PodScheduled", "True"),
            ],
            "containerStatuses": statuses,
        }
        if not mount_errors or status.get("podIP"):
            desired["podIP"], desired["podIPs"] = ip, [{"ip": ip}]
        if init_statuses:
            desired["initContainerStatuses"] = init_statuses
        return desired, events

    @staticmethod
    def differs(pod: Pod, desired: dict) -> bool:
        status = drop_none(pod.get("status") or {})
        want = drop_none(desired)
        for key, value in want.items():
            if key == "conditions":
                types = {c["type"] for c in value}
                have = sorted((c for c in status.get("conditions", []) if c["type"] in types), key=lambda c: c["type"])
                if have != sorted(value, key=lambda c: c["type"]):
                    return True
            elif key.endswith("ontainerStatuses"):
                have = [{k: v for k, v in c.items() if v not in ({}, None)} for c in status.get(key, [])]
                wanted = [{k: v for k, v in c.items() if v not in ({}, None)} for c in value]
                if have != wanted:
                    return True
            elif status.get(key) != value:
                return True
        return False

    # -- pods: actions --------------------------------------------------------------------------
    def reconcile(self, core: client.CoreV1Api, pod: Pod) -> None:
        meta = pod["metadata"]
        if pod["spec"].get("nodeName") not in self.nodes:
            return
        if meta.get("deletionTimestamp"):
            self.finish_deletion(core, pod)
            return
        now = time.time()
        desired, events = self.plan(pod, now, core)
        if desired is not None and self.differs(pod, desired):
            try:
                resp = core.patch_namespaced_pod_status(
                    meta["name"], meta["namespace"], {"status": desired}, _preload_content=False
                )
            except ApiException as e:
                if e.status not in (404, 409, 422):
                    raise
                log.debug("status patch of %s/%s: %s", meta["namespace"], meta["name"], e.status)
                return
            updated = json.loads(resp.data)
            self.store(updated)
            self.emit_transition_events(core, pod, updated, now)
            pod = updated
        for type_, reason, message, field_path, interval in events:
            self.recurring_event(core, pod, type_, reason, message, field_path, interval, now)

    def finish_deletion(self, core: client.CoreV1Api, pod: Pod) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        if pod.get("_deleted_at") and time.time() - pod["_deleted_at"] < 5:
            return
        pod["_deleted_at"] = time.time()
        try:
            core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"])
                ),
                grace_period_seconds=0,
            )
            log.info("pod %s/%s terminated (deletion finished)", *key)
        except ApiException as e:
            if e.status not in (404, 409):
                raise

    def emit_transition_events(self, core: client.CoreV1Api, before: Pod, after: Pod, now: float) -> None:
        def kinds(pod: Pod) -> dict[str, tuple[str, int]]:
            out = {}
            for c in (pod.get("status") or {}).get("containerStatuses") or []:
                st = c.get("state") or {}
                if "running" in st:
                    k = "running"
                elif "waiting" in st:
                    k = st["waiting"].get("reason") or "waiting"
                else:
                    k = "terminated"
                out[c["name"]] = (k, c.get("restartCount", 0))
            return out

        old, new = kinds(before), kinds(after)
        images = {c["name"]: c["image"] for c in after["spec"].get("containers", [])}
        for name, (kind, restarts) in new.items():
            if old.get(name) == (kind, restarts):
                continue
            path = f"spec.containers{{{name}}}"
            image = images.get(name, "")
            if kind == "running" and (old.get(name, ("",))[0] != "running"):
                self.event(
                    core,
                    after,
                    "Normal",
                    "Pulled",
                    f'Container image "{image}" already present on machine',
                    path,
                    now,
                )
                self.event(core, after, "Normal", "Created", f"Created container {name}", path, now)
                self.event(core, after, "Normal", "Started", f"Started container {name}", path, now)
            elif kind == "CrashLoopBackOff":
                self.event(core, after, "Warning", "BackOff", "Back-off restarting failed container", path, now)
            elif kind == "ImagePullBackOff" and old.get(name, ("",))[0] != kind:
                self.event(
                    core,
                    after,
                    "Warning",
                    "Failed",
                    f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and '
                    f'unpack image "{image}": not found (simulated)',
                    path,
                    now,
                )
                self.event(core, after, "Warning", "Failed", "Error: ImagePullBackOff", path, now)
                self.event(core, after, "Normal", "BackOff", f'Back-off pulling image "{image}"', path, now)

    def event(
        self,
        core: client.CoreV1Api,
        pod: Pod,
        type_: str,
        reason: str,
        message: str,
        field_path: str | None,
        now: float,
        name: str | None = None,
        strict: bool = False,
    ) -> None:
        """Create an Event about ``pod``; ``strict``: raise API errors instead of logging them."""
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name or f"{meta['name']}.{int(now * 1e6):x}{random.randint(0, 0xFFFF):04x}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion"),
                "fieldPath": field_path,
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": "kubelet", "host": pod["spec"]["nodeName"]},
            "firstTimestamp": ts(now),
            "lastTimestamp": ts(now),
            "count": 1,
            "reportingComponent": "kubelet",
            "reportingInstance": pod["spec"]["nodeName"],
        }
        try:
            core.create_namespaced_event(meta["namespace"], drop_none(body))
        except ApiException as e:
            if strict:
                raise
            log.debug("event %s for %s/%s: %s", reason, meta["namespace"], meta["name"], e.status)

    def recurring_event(
        self,
        core: client.CoreV1Api,
        pod: Pod,
        type_: str,
        reason: str,
        message: str,
        field_path: str | None,
        interval: float,
        now: float,
    ) -> None:
        """An event the kubelet repeats while a problem lasts, at most once per ``interval``; repeats
        count up one Event (like the kubelet's event aggregation). The count lives on the Event:
        after a restart of this process the existing Event is read and counted on."""
        meta = pod["metadata"]
        ns = meta["namespace"]
        name = f"{meta['name']}.{sha('/'.join((meta['uid'], reason, field_path or '', message)))[:16]}"
        key = (ns, name)
        with self.lock:
            last = self.recurring.get(key)
            if last is not None and now - last[0] < interval:
                return
            count = last[1] if last else 0
            self.recurring[key] = (now, count)  # tried now, whatever happens below
        bump = {"count": count + 1, "lastTimestamp": ts(now)}
        try:
            if count:
                try:
                    core.patch_namespaced_event(name, ns, bump)
                    self.recurring[key] = (now, count + 1)
                    return
                except ApiException as e:
                    if e.status != 404:  # 404: expired (event TTL); start again
                        raise
            try:
                self.event(core, pod, type_, reason, message, field_path, now, name=name, strict=True)
                self.recurring[key] = (now, 1)
            except ApiException as e:
                if e.status != 409:
                    raise
                existing = json.loads(core.read_namespaced_event(name, ns, _preload_content=False).data)
                count = int(existing.get("count") or 1)
                core.patch_namespaced_event(name, ns, {"count": count + 1, "lastTimestamp": ts(now)})
                self.recurring[key] = (now, count + 1)
        except ApiException as e:
            log.debug("event %s for %s/%s: %s", reason, ns, meta["name"], e.status)

    def prune_recurring(self, now: float, older_than: float = 600.0) -> None:
        with self.lock:
            for key, (when, _count) in list(self.recurring.items()):
                if now - when > older_than:
                    del self.recurring[key]

    # -- cache ----------------------------------------------------------------------------------
    def store(self, pod: Pod) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        with self.lock:
            cur = self.pods.get(key)
            if cur is not None and cur["metadata"].get("uid") == pod["metadata"].get("uid"):
                if rv_int(cur) > rv_int(pod):
                    return
                if "_deleted_at" in cur:
                    pod["_deleted_at"] = cur["_deleted_at"]
            self.pods[key] = pod

    def handle(self, core: client.CoreV1Api, pod: Pod) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        with self.lock:
            self.store(pod)
            current = self.pods[key]
            try:
                self.reconcile(core, current)
            except Exception as e:
                log.warning("reconcile %s/%s failed: %s", *key, e)

    # -- loops ----------------------------------------------------------------------------------
    def watch_loop(self) -> None:
        core = client.CoreV1Api(self.api_client())
        selector = "spec.nodeName!="
        while not self.stop.is_set():
            try:
                resp = core.list_pod_for_all_namespaces(field_selector=selector, _preload_content=False)
                listing = json.loads(resp.data)
                rv = listing["metadata"]["resourceVersion"]
                with self.lock:
                    seen = set()
                    for pod in listing["items"]:
                        seen.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
                        self.handle(core, pod)
                    for key in list(self.pods):
                        if key not in seen:
                            del self.pods[key]
                log.info("listed %d bound pods at resourceVersion %s", len(listing["items"]), rv)
                self.watch_stream(
                    core.list_pod_for_all_namespaces,
                    rv,
                    lambda kind, obj: self.on_pod_event(core, kind, obj),
                    field_selector=selector,
                )
            except Exception as e:
                log.warning("pod list/watch failed (%s); relisting", e)
                self.stop.wait(1)

    def on_pod_event(self, core: client.CoreV1Api, kind: str, obj: Pod) -> None:
        if kind == "DELETED":
            with self.lock:
                self.pods.pop((obj["metadata"]["namespace"], obj["metadata"]["name"]), None)
            return
        self.handle(core, obj)

    def watch_stream(self, list_fn: Any, rv: str, on_event: Any, **kwargs: Any) -> None:
        """Watch from ``rv`` with ``list_fn`` (a list_*_for_all_namespaces), calling
        ``on_event(type, object)``, until an error (the caller relists)."""
        while not self.stop.is_set():
            timeout = random.randint(240, 300)
            resp = list_fn(
                watch=True,
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout,
                _preload_content=False,
                _request_timeout=(10, timeout + 30),
                **kwargs,
            )
            try:
                for line in iter_resp_lines(resp):
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        raise RuntimeError(f"watch error: {obj.get('code')} {obj.get('message')}")
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if kind == "BOOKMARK":
                        continue
                    on_event(kind, obj)
            finally:
                resp.release_conn()

    def refs_loop(self, kind: str) -> None:
        """Keep the names and keys of all ConfigMaps (``kind`` "configmap") or Secrets ("secret")."""
        core = client.CoreV1Api(self.api_client())
        if kind == "configmap":
            list_fn = core.list_config_map_for_all_namespaces
        else:
            list_fn = core.list_secret_for_all_namespaces

        def on_event(type_: str, obj: dict) -> None:
            meta = obj["metadata"]
            if type_ == "DELETED":
                with self.refs_lock:
                    self.refs[kind].pop((meta["namespace"], meta["name"]), None)
            else:
                self.ref_store(kind, obj)

        while not self.stop.is_set():
            try:
                listing = json.loads(list_fn(_preload_content=False).data)
                table = {}
                for obj in listing["items"]:
                    meta = obj["metadata"]
                    table[(meta["namespace"], meta["name"])] = (rv_int(obj), data_keys(obj))
                with self.refs_lock:
                    self.refs[kind] = table
                    self.refs_synced.add(kind)
                log.info("listed %d %ss", len(table), kind)
                self.watch_stream(list_fn, listing["metadata"]["resourceVersion"], on_event)
            except Exception as e:
                log.warning("%s list/watch failed (%s); relisting", kind, e)
                self.stop.wait(1)

    def resync_loop(self) -> None:
        core = client.CoreV1Api(self.api_client())
        while not self.stop.wait(self.args.resync_interval):
            with self.lock:
                pods = list(self.pods.values())
            for pod in pods:
                if self.stop.is_set():
                    return
                self.handle(core, pod)
            self.prune_recurring(time.time())

    def run(self) -> None:
        core = client.CoreV1Api(self.api_client())
        deadline = time.time() + 120
        while True:
            try:
                for node in self.nodes:
                    self.register_node(core, node)
                    self.update_node_status(core, node, time.time())
                break
            except Exception as e:
                if time.time() > deadline:
                    raise
                log.warning("node registration failed (%s); retrying", e)
                time.sleep(1)
        threads = [
            threading.Thread(target=self.heartbeat_loop, name="heartbeat", daemon=True),
            threading.Thread(target=self.watch_loop, name="watch", daemon=True),
            threading.Thread(target=self.resync_loop, name="resync", daemon=True),
            threading.Thread(target=self.refs_loop, args=("configmap",), name="configmaps", daemon=True),
            threading.Thread(target=self.refs_loop, args=("secret",), name="secrets", daemon=True),
        ]
        for t in threads:
            t.start()
        log.info("simulating %d nodes: %s", len(self.nodes), ", ".join(self.nodes))
        while not self.stop.wait(1):
            for t in threads:
                if not t.is_alive():
                    log.error("thread %s died; exiting", t.name)
                    sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--prefix", default="sim-node")
    p.add_argument("--cpu", default="8")
    p.add_argument("--memory", default="32Gi")
    p.add_argument("--pods", type=int, default=110)
    p.add_argument("--lease-interval", type=float, default=10.0, help="seconds between Lease renewals")
    p.add_argument("--status-interval", type=float, default=30.0, help="seconds between node status updates")
    p.add_argument("--resync-interval", type=float, default=2.0, help="seconds between pod resyncs")
    p.add_argument(
        "--node-poll-interval", type=float, default=2.0, help="seconds between reads of the node annotations"
    )
    p.add_argument("--crash-interval", type=float, default=10.0, help="seconds between simulated crashes")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(threadName)s %(message)s",
    )
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    sim = SimKubelet(args)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        sim.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sim.run()


if __name__ == "__main__":
    main()
