"""Which cluster an alert is about, and the owner lookup of that cluster (issue 16).

One cluster (no ``fleet.clusters``): every alert is ``cluster_name``'s, its labels are not read, as before the
fleet. A fleet: the alert's cluster label (``fleet.cluster_label``) names it, else the home cluster; a name
that is not configured gets a labels-only resolver keyed by that name (no other cluster's client answers for
it) and the reason, so the intake stores and escalates the incident and nothing acts on it.
"""

from __future__ import annotations

from kubernaut.cluster.fleet import Fleet
from kubernaut.config.settings import KubernautConfig
from kubernaut.models.signal import Signal
from kubernaut.processing.owners import OwnerResolver


class ClusterRouter:
    def __init__(self, config: KubernautConfig, home_owners: OwnerResolver, fleet: Fleet | None) -> None:
        processing = config.processing
        self._config = config
        self._fleet = fleet
        self._home_owners = home_owners
        self.owners: dict[str, OwnerResolver] = {config.cluster_name: home_owners}
        if fleet is not None:
            self.owners = {
                name: OwnerResolver(member.api if processing.resolve_owners else None, name,
                                    ttl_s=processing.owner_cache_ttl_s, timeout_s=processing.kube_timeout_s)
                for name, member in fleet.members.items()}

    def route(self, signal: Signal) -> tuple[Signal, OwnerResolver, str | None]:
        """The signal with its cluster, the owner resolver of that cluster, and why it is unknown (None: known)."""
        if self._fleet is None:  # one cluster, as before the fleet: the label is not read
            return signal.model_copy(update={"cluster": self._config.cluster_name}), self._home_owners, None
        cluster = self._fleet.cluster_of(signal.labels)
        signal = signal.model_copy(update={"cluster": cluster})
        owners = self.owners.get(cluster)
        if owners is not None:
            return signal, owners, None
        return (signal, OwnerResolver(None, cluster, ttl_s=1.0, timeout_s=1.0),
                f"cluster {cluster!r} (label {self._fleet.cluster_label}) is not configured; "
                f"known: {sorted(self.owners)}")
