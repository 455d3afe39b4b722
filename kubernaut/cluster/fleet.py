"""The fleet: cluster name → its ``ClusterAPI``, with a circuit per cluster and hot-reloaded credentials.

Each service builds one ``Fleet`` per replica from ``KubernautConfig.clusters()`` (a single-cluster config is
a fleet of one, named ``cluster_name``, connected exactly as ``cluster.client.connect`` always did). Lookups
fail closed: a name that is not configured has no API, and callers refuse or escalate rather than act on
another cluster. A cluster whose API server stops answering opens its own circuit (``kubernaut.breaker``):
its callers fail at once with ``Unreachable`` while the other clusters carry on.

Credentials are re-read every ``fleet.reload_interval_s`` (``watch``): when a kubeconfig file or Secret
changes, the cluster's ``ClusterAPI`` is given the new client in place, so every holder uses it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes import config as kube_config

from kubernaut.breaker import CircuitBreaker
from kubernaut.cluster.api import EXECUTOR_FIELD_MANAGER, ClusterAPI
from kubernaut.cluster.client import ClusterConnection, connect
from kubernaut.cluster.errors import ClusterError
from kubernaut.config.settings import ClusterConfig, ExecutionConfig, KubernautConfig, KubernetesConfig
from kubernaut.observability import metrics

logger = logging.getLogger(__name__)


class UnknownCluster(LookupError):
    """A cluster name that is not configured: nothing may be done there."""


@dataclass
class Member:
    spec: ClusterConfig
    execution: ExecutionConfig
    connection: ClusterConnection
    api: ClusterAPI | None
    circuit: CircuitBreaker
    stamp: str | None = None  # digest of the credentials last loaded (hot reload compares it)

    @property
    def name(self) -> str:
        return self.spec.name

    def snapshot(self) -> dict[str, Any]:
        return {"source": self.connection.source, "reason": self.connection.reason,
                "available": self.api is not None, "mode": self.execution.mode.value,
                "circuit": self.circuit.snapshot()}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _client_from_dict(document: dict[str, Any], context: str | None) -> client.ApiClient:
    cfg = client.Configuration()
    kube_config.load_kube_config_from_dict(document, context=context, client_configuration=cfg)
    return client.ApiClient(cfg)


def connect_cluster(spec: ClusterConfig, default: KubernetesConfig, home: ClusterAPI | None
                    ) -> tuple[ClusterConnection, str | None]:
    """(connection, credentials digest). Never raises: an unusable cluster has no client and says why."""
    if spec.in_cluster:
        if not os.environ.get("KUBERNETES_SERVICE_HOST"):
            return ClusterConnection(None, "none", f"cluster {spec.name}: in_cluster but not running in a pod"), None
        connection = connect(KubernetesConfig(kubeconfig=None, request_timeout_s=default.request_timeout_s))
        return connection, "in-cluster"
    if spec.kubeconfig_secret:
        namespace, name = spec.kubeconfig_secret.split("/", 1)
        if home is None:
            return ClusterConnection(None, "none", f"cluster {spec.name}: no home cluster to read Secret "
                                                   f"{spec.kubeconfig_secret} from"), None
        try:
            secret = home.get_blocking("Secret", name, namespace)
            raw = base64.b64decode((secret.get("data") or {})[spec.kubeconfig_secret_key])
            document = yaml.safe_load(raw)
            api_client = _client_from_dict(document, spec.context)
        except KeyError:
            return ClusterConnection(None, "none", f"cluster {spec.name}: Secret {spec.kubeconfig_secret} has no "
                                                   f"key {spec.kubeconfig_secret_key}"), None
        except Exception as exc:  # unreachable home, 403, bad YAML, bad kubeconfig: all mean "no client"
            return ClusterConnection(None, "none", f"cluster {spec.name}: kubeconfig Secret "
                                                   f"{spec.kubeconfig_secret} unusable: {type(exc).__name__}: "
                                                   f"{str(exc)[:200]}"), None
        return ClusterConnection(api_client, f"secret:{spec.kubeconfig_secret}"), _digest(raw)
    settings = KubernetesConfig(kubeconfig=spec.kubeconfig, context=spec.context,
                                request_timeout_s=spec.request_timeout_s or default.request_timeout_s)
    if spec.kubeconfig is None and spec.context is None:
        # The single-cluster default: exactly what `kubernetes` says (in-cluster, $KUBECONFIG, ~/.kube/config).
        settings = default
    connection = connect(settings)
    stamp = None
    if connection.source.startswith("kubeconfig:"):
        try:
            stamp = _digest(Path(connection.source.split(":", 1)[1]).read_bytes())
        except OSError:
            stamp = None
    return connection, stamp


@dataclass
class Fleet:
    """The clusters one replica talks to. ``Fleet.build`` connects (blocking: call it in a thread)."""

    home: str
    members: dict[str, Member]
    cluster_label: str = "cluster"
    reload_interval_s: float = 15.0
    _config: KubernautConfig | None = field(default=None, repr=False)
    _api_options: dict[str, Any] = field(default_factory=dict, repr=False)
    _home_api: ClusterAPI | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, config: KubernautConfig, *, timeout_s: float | None = None, read_retries: int = 1,
              field_manager: str = EXECUTOR_FIELD_MANAGER,
              clock: Callable[[], float] | None = None) -> Fleet:
        options = {"timeout_s": timeout_s or config.kubernetes.request_timeout_s, "read_retries": read_retries,
                   "field_manager": field_manager}
        fleet = cls(home=config.home_cluster, members={}, cluster_label=config.fleet.cluster_label,
                    reload_interval_s=config.fleet.reload_interval_s, _config=config, _api_options=options)
        if any(c.kubeconfig_secret for c in config.clusters()):
            own = connect(config.kubernetes)  # Kubernaut's own credentials: where the spokes' Secrets live
            fleet._home_api = ClusterAPI(own.api_client, options["timeout_s"]) if own.api_client else None
        for spec in config.clusters():
            connection, stamp = connect_cluster(spec, config.kubernetes, fleet._home_api)
            circuit = CircuitBreaker(failure_threshold=config.fleet.circuit_failures,
                                     reset_s=config.fleet.circuit_reset_s,
                                     **({"clock": clock} if clock is not None else {}))
            # A single-cluster config keeps the behaviour it always had: every call tries the API server.
            api = ClusterAPI(connection.api_client, cluster=spec.name,
                             circuit=circuit if config.fleet.clusters else None,
                             **{**options, "timeout_s": spec.request_timeout_s or options["timeout_s"]}) \
                if connection.api_client is not None else None
            fleet.members[spec.name] = Member(spec, spec.execution_for(config.execution), connection, api, circuit,
                                              stamp)
            if api is None:
                logger.warning("cluster %s: no Kubernetes client (%s)", spec.name, connection.reason)
        return fleet

    # -- lookups ----------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.members)

    @property
    def multi(self) -> bool:
        return len(self.members) > 1

    def cluster_of(self, labels: dict[str, str]) -> str:
        """The cluster an alert names (its cluster label), else the home cluster. May be unknown."""
        named = (labels.get(self.cluster_label) or "").strip()
        return named or self.home

    def known(self, cluster: str | None) -> bool:
        return (cluster or self.home) in self.members

    def member(self, cluster: str | None) -> Member:
        name = cluster or self.home
        try:
            return self.members[name]
        except KeyError:
            raise UnknownCluster(f"cluster {name!r} is not configured (fleet.clusters: {sorted(self.members)})"
                                 ) from None

    def api(self, cluster: str | None) -> ClusterAPI | None:
        """The cluster's API (None: configured but no credentials). Unknown names raise ``UnknownCluster``."""
        return self.member(cluster).api

    def execution(self, cluster: str | None) -> ExecutionConfig:
        return self.member(cluster).execution

    def snapshot(self) -> dict[str, Any]:
        return {name: m.snapshot() for name, m in self.members.items()}

    def degraded(self) -> list[str]:
        """Clusters whose circuit is open right now (their incidents wait; the others carry on)."""
        return [n for n, m in self.members.items() if m.circuit.state.value == "open"]

    # -- hot reload -------------------------------------------------------------------------------

    def reload_blocking(self) -> list[str]:
        """Re-read every cluster's credentials; those that changed get a new client. Returns their names."""
        if self._config is None:
            return []
        changed: list[str] = []
        for name, member in list(self.members.items()):
            connection, stamp = connect_cluster(member.spec, self._config.kubernetes, self._home_api)
            if stamp is None or stamp == member.stamp:
                continue
            with self._lock:
                member.connection, member.stamp = connection, stamp
                if connection.api_client is None:
                    continue
                if member.api is None:
                    member.api = ClusterAPI(connection.api_client, cluster=name,
                                            circuit=member.circuit if self._config.fleet.clusters else None,
                                            **{**self._api_options,
                                               "timeout_s": member.spec.request_timeout_s
                                               or self._api_options["timeout_s"]})
                else:
                    member.api.api = connection.api_client  # in place: every holder of this ClusterAPI sees it
                    member.api._docs.clear()
                member.circuit.record_success()
            changed.append(name)
            logger.info("cluster %s: credentials changed (%s), client reloaded", name, connection.source)
        return changed

    def probe_blocking(self) -> dict[str, str]:
        """One cheap request per cluster (GET /version) through its circuit, so an API server that went away
        opens its circuit (and one that came back closes it) without waiting for an incident; each circuit's
        state is recorded (metric ``kubernaut_cluster_circuit_state``, label ``cluster``)."""
        states: dict[str, str] = {}
        for name, member in self.members.items():
            if member.api is not None:
                try:
                    member.api.call("GET", "/version", timeout_s=min(member.api.timeout_s, 5.0))
                except ClusterError:
                    pass  # counted by the circuit
            states[name] = member.circuit.state.value if member.api is not None else "open"
            metrics.cluster_circuit_state(name, states[name])
        return states

    async def watch(self, probe: bool = False) -> None:
        """Reload credentials (and with ``probe``, check each API server) forever: a task of the replica."""
        while True:
            try:
                await asyncio.to_thread(self.reload_blocking)
                if probe:
                    await asyncio.to_thread(self.probe_blocking)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("reloading or probing the clusters failed", exc_info=True)
            await asyncio.sleep(self.reload_interval_s)


def target_key(key: str, cluster: str | None, home: str) -> str:
    """The lock/cooldown/blocking key of a target on ``cluster``: the home cluster's keys are unchanged (a
    single-cluster install keeps its history); another cluster's carry its name (``name@namespace:Kind:name``)."""
    return key if cluster is None or cluster == home else f"{cluster}@{key}"


def api_or_unknown(fleet: Fleet, cluster: str | None) -> ClusterAPI | None:
    """The API of a configured cluster, None for an unknown one (callers treat both as 'cannot reach')."""
    try:
        return fleet.api(cluster)
    except UnknownCluster:
        return None


__all__ = ["Fleet", "Member", "UnknownCluster", "api_or_unknown", "connect_cluster", "target_key"]
