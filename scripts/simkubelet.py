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
  ``NotReady``          running but not ready

  ``sim.kubernaut.io/container: <name>`` limits the state to one container. No annotation (or
  ``Running``) gives Running/Ready again.
* pods that do not restart (Jobs): ``sim.kubernaut.io/complete: "true"`` ends them Succeeded
  (``"failed"``: Failed, exit 1), after ``sim.kubernaut.io/run-seconds`` (default 0); without it they
  stay Running.

Status is written only when it differs from what the server has, so the process never fights with
itself; all bookkeeping (restart counts, times) lives in the pod status, so a restart of this
process continues where the last one stopped.
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
NODE_LABEL = "sim.kubernaut.io/node"
KUBELET_VERSION = "v1.20.2"
LEASE_NS = "kube-node-lease"
LEASE_DURATION = 40

FAILURE_STATES = {"CrashLoopBackOff", "OOMKilled", "ImagePullBackOff", "NotReady"}

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

    # -- clients --------------------------------------------------------------------------------
    def api_client(self) -> client.ApiClient:
        # One ApiClient per thread.
        return config.new_client_from_config(config_file=self.args.kubeconfig)

    # -- nodes ----------------------------------------------------------------------------------
    def node_ip(self, node: str) -> str:
        return f"10.240.0.{self.nodes[node] + 1}"

    def node_status(self, node: str, now: float) -> dict:
        a = self.args
        resources = {"cpu": a.cpu, "memory": a.memory, "pods": str(a.pods), "ephemeral-storage": "100Gi"}

        def cond(type_: str, status: str, reason: str, message: str) -> dict:
            return {
                "type": type_,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": ts(now),
                "lastTransitionTime": ts(self.started),
            }

        return {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status (simulated)"),
            ],
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
        last_status = 0.0
        while not self.stop.is_set():
            now = time.time()
            try:
                if now - last_status >= self.args.status_interval:
                    for node in self.nodes:
                        self.update_node_status(core, node, now)
                    last_status = now
                for node in self.nodes:
                    self.renew_lease(coord, node, now)
            except Exception as e:  # keep beating whatever happens (apiserver restart, ...)
                log.warning("heartbeat failed: %s", e)
                last_status = 0.0
                self.stop.wait(1)
                continue
            self.stop.wait(self.args.lease_interval)

    def update_node_status(self, core: client.CoreV1Api, node: str, now: float) -> None:
        try:
            resp = core.patch_node_status(node, {"status": self.node_status(node, now)})
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

    # -- pods: desired state --------------------------------------------------------------------
    def pod_ip(self, pod: Pod) -> str:
        h = int(sha(pod["metadata"]["uid"])[:8], 16)
        return f"10.244.{self.nodes[pod['spec']['nodeName']]}.{h % 250 + 2}"

    def container_status(self, pod: Pod, c: dict, old: dict, state: str, now: float) -> dict:
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
        if state in ("CrashLoopBackOff", "OOMKilled"):
            reason, code = ("OOMKilled", 137) if state == "OOMKilled" else ("Error", 1)
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

    def desired_status(self, pod: Pod, now: float) -> dict | None:
        meta, spec = pod["metadata"], pod["spec"]
        status = pod.get("status") or {}
        if spec.get("nodeName") not in self.nodes or status.get("phase") in ("Succeeded", "Failed"):
            return None
        ann = meta.get("annotations") or {}
        state = ann.get(ANN_STATE, "").strip()
        if state not in FAILURE_STATES:
            state = ""
        target = ann.get(ANN_CONTAINER)
        start_time = status.get("startTime") or ts(now)
        old_cs = {c["name"]: c for c in status.get("containerStatuses") or []}

        completion = ""
        if spec.get("restartPolicy", "Always") != "Always":
            completion = ann.get(ANN_COMPLETE, "").strip().lower()
            try:
                run_for = float(ann.get(ANN_RUN_SECONDS, "0") or 0)
            except ValueError:
                run_for = 0.0
            if completion not in ("true", "failed") or now - (parse_ts(start_time) or now) < run_for:
                completion = ""

        statuses = []
        for c in spec.get("containers", []):
            old = old_cs.get(c["name"], {})
            if completion:
                code = 0 if completion == "true" else 1
                started_at = ((old.get("state") or {}).get("running") or {}).get("startedAt") or start_time
                statuses.append(
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": f"docker-pullable://{c['image']}@sha256:{sha(c['image'])}",
                        "restartCount": old.get("restartCount", 0),
                        "state": {
                            "terminated": {
                                "exitCode": code,
                                "reason": "Completed" if code == 0 else "Error",
                                "startedAt": started_at,
                                "finishedAt": ts(now),
                                "containerID": "containerd://" + sha(f"{meta['uid']}/{c['name']}/0"),
                            }
                        },
                        "ready": False,
                        "started": False,
                        "containerID": "containerd://" + sha(f"{meta['uid']}/{c['name']}/0"),
                    }
                )
                continue
            cstate = state if (not target or target == c["name"]) else ""
            statuses.append(self.container_status(pod, c, old, cstate, now))

        init_statuses = []
        for c in spec.get("initContainers") or []:
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
        ip = status.get("podIP") or self.pod_ip(pod)
        desired = {
            "phase": phase,
            "hostIP": self.node_ip(spec["nodeName"]),
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": start_time,
            "conditions": [
                cond("Initialized", "True"),
                cond("Ready", ready, *not_ready),
                cond("ContainersReady", ready, *not_ready),
                cond("PodScheduled", "True"),
            ],
            "containerStatuses": statuses,
        }
        if init_statuses:
            desired["initContainerStatuses"] = init_statuses
        return desired

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
        desired = self.desired_status(pod, now)
        if desired is None or not self.differs(pod, desired):
            return
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
        field_path: str,
        now: float,
    ) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{int(now * 1e6):x}{random.randint(0, 0xFFFF):04x}",
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
            core.create_namespaced_event(meta["namespace"], body)
        except ApiException as e:
            log.debug("event %s for %s/%s: %s", reason, meta["namespace"], meta["name"], e.status)

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
                self.watch(core, selector, rv)
            except Exception as e:
                log.warning("pod list/watch failed (%s); relisting", e)
                self.stop.wait(1)

    def watch(self, core: client.CoreV1Api, selector: str, rv: str) -> None:
        while not self.stop.is_set():
            timeout = random.randint(240, 300)
            resp = core.list_pod_for_all_namespaces(
                field_selector=selector,
                watch=True,
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout,
                _preload_content=False,
                _request_timeout=(10, timeout + 30),
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
                    if kind == "DELETED":
                        with self.lock:
                            self.pods.pop((obj["metadata"]["namespace"], obj["metadata"]["name"]), None)
                        continue
                    self.handle(core, obj)
            finally:
                resp.release_conn()

    def resync_loop(self) -> None:
        core = client.CoreV1Api(self.api_client())
        while not self.stop.wait(self.args.resync_interval):
            with self.lock:
                pods = list(self.pods.values())
            for pod in pods:
                if self.stop.is_set():
                    return
                self.handle(core, pod)

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
