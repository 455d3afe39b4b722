"""Alert Processor: committed alerts → incidents (fingerprint on the workload, dedup, classification)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pydantic import ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

from kubernaut.cluster.client import ClusterConnection, connect
from kubernaut.cluster.fleet import Fleet
from kubernaut.config.settings import KubernautConfig
from kubernaut.processing import filters, intake
from kubernaut.processing.classification import classify
from kubernaut.processing.events import EventSource
from kubernaut.processing.owners import OwnerResolver
from kubernaut.processing.routing import ClusterRouter
from kubernaut.processing.watch_ownership import WatchOwnership
from kubernaut.serving import ReplicaBase, wake
from kubernaut.storage import alerts as alerts_store
from kubernaut.storage import fleet as fleet_store
from kubernaut.storage.database import transient

logger = logging.getLogger(__name__)

_BATCH = 200  # alerts per transaction: large enough to fold a storm, small enough to keep locks short


def rejection_reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()[:5])
        return f"invalid {exc.title}: {problems}"[:1000]
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"[:1000]


@serve.deployment(name="processor")
class AlertProcessor(ReplicaBase):
    service_name = "processor"

    async def __init__(self, config: KubernautConfig, analysis: DeploymentHandle,
                       notifications_handle: DeploymentHandle) -> None:
        await self._setup(config)
        self._analysis = analysis
        self._notifications = notifications_handle
        self._filters = filters.load_filters(config.processing)
        processing = config.processing
        cluster = await asyncio.to_thread(connect, config.kubernetes) \
            if processing.resolve_owners or processing.events.enabled else None
        self._owners = OwnerResolver(
            cluster.api_client if cluster and processing.resolve_owners else None, config.cluster_name,
            ttl_s=processing.owner_cache_ttl_s, timeout_s=processing.kube_timeout_s,
        )
        # A fleet (fleet.clusters): each alert's cluster from its label, owners looked up on that cluster.
        # A single-cluster config keeps the one resolver above, under the home cluster's name.
        self._fleet = await asyncio.to_thread(Fleet.build, config, timeout_s=processing.kube_timeout_s) \
            if config.fleet.clusters else None
        self._router = ClusterRouter(config, self._owners, self._fleet)
        await fleet_store.adopt_home(self.db.pool, config.home_cluster)
        self._fleet_watch = asyncio.get_running_loop().create_task(self._fleet.watch()) \
            if self._fleet is not None else None
        self._wake = asyncio.Event()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        # Optional second source: Warning events become alerts on the webhook's path (committed, then the
        # sweeper, woken at once, processes them). Each cluster's watch has one owner replica at a time (a
        # lease in PostgreSQL): see kubernaut.processing.watch_ownership.
        self._watches: WatchOwnership | None = None
        if processing.events.enabled:
            if self._fleet is None and (cluster is None or not cluster.available):
                logger.warning("processing.events is enabled but no cluster is reachable (%s): no event source",
                               cluster.reason if cluster else "no connection")
            self._watches = WatchOwnership(self.db.pool, self._event_sources(config, cluster),
                                           ttl_s=processing.events.lease_ttl_s,
                                           renew_s=processing.events.lease_renew_s)
            self._watches.start()

    def _event_sources(self, config: KubernautConfig, cluster: ClusterConnection | None
                       ) -> dict[str, Callable[[], EventSource | None]]:
        """Cluster name → a factory of its event source (None while it has no client)."""
        events, timeout = config.processing.events, config.kubernetes.request_timeout_s
        if self._fleet is None:
            # One cluster, as always: its alerts carry no cluster label.
            def home() -> EventSource | None:
                if cluster is None or not cluster.available:
                    return None
                return EventSource(cluster.api_client, self.db.pool, events, on_committed=self._wake.set,
                                   request_timeout_s=timeout)
            return {config.home_cluster: home}
        fleet = self._fleet

        def member_source(name: str) -> Callable[[], EventSource | None]:
            # A fleet: each source labels its alerts with its cluster (an unreachable cluster's watch backs off on
            # its own, behind its circuit); credentials that appear later (hot reload) are used at the next tick.
            def make() -> EventSource | None:
                api = fleet.members[name].api
                if api is None:
                    return None
                return EventSource(api, self.db.pool, events, on_committed=self._wake.set, request_timeout_s=timeout,
                                   cluster=name, cluster_label=config.fleet.cluster_label)
            return make
        return {name: member_source(name) for name in fleet.members}

    async def event_watches(self) -> dict[str, object] | None:
        """This replica's share of the event watches (None: processing.events is off)."""
        return self._watches.snapshot() if self._watches is not None else None

    async def wake(self) -> None:
        """New alerts were committed without a processing call: process them now."""
        self._wake.set()

    async def process(self, alert_ids: list[int]) -> dict[int, int | None]:
        """Turn committed alerts into incident memberships; returns alert id → incident id (None: filtered, or a
        resolved alert with no incident). Alerts another replica is processing right now are left out."""
        result: dict[int, int | None] = {}
        opened_any = notify_any = False
        for start in range(0, len(alert_ids), _BATCH):
            outcome, already = await self._process_batch(alert_ids[start:start + _BATCH])
            result.update(already)
            if outcome is not None:
                result.update(outcome.incident_by_alert)
                opened_any |= bool(outcome.opened or outcome.reanalyze)
                notify_any |= outcome.notified
        if opened_any:
            wake(self._analysis)
        if notify_any:
            wake(self._notifications)
        return result

    async def _enrich(self, received: list[alerts_store.ReceivedAlert]
                      ) -> tuple[dict[int, intake.Enriched], dict[int, str]]:
        """Cluster lookups happen before the transaction: no row lock is held across API calls. Each alert on
        its own: one that cannot be turned into a signal and a target is rejected with the reason."""
        enriched: dict[int, intake.Enriched] = {}
        rejected: dict[int, str] = {}
        for alert in received:
            try:
                signal = alerts_store.to_signal(alert)
                signal, owners, unknown = self._router.route(signal)
                resolution = await owners.resolve(signal.labels)
                namespace_labels = await owners.namespace_labels(signal.namespace)
                enriched[alert.id] = intake.Enriched(
                    signal=signal, resolution=resolution,
                    classification=classify(signal.namespace, namespace_labels, signal.raw_severity),
                    request_id=alert.request_id, unknown_cluster=unknown,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if transient(exc):
                    raise
                rejected[alert.id] = rejection_reason(exc)
        return enriched, rejected

    async def _process_batch(self, alert_ids: list[int]) -> tuple[intake.BatchOutcome | None, dict[int, int | None]]:
        enriched, rejected = await self._enrich(await alerts_store.unprocessed(self.db.pool, alert_ids))
        try:
            return await self._commit(alert_ids, enriched, rejected)
        except Exception as exc:
            if transient(exc):
                raise  # the sweeper tries again; nothing says these alerts are at fault
            logger.warning("a batch of %d alerts failed (%s); processing them one at a time", len(enriched),
                           rejection_reason(exc))
        # One alert the database refuses (or that breaks the intake) must not hold back the ones around it.
        merged = intake.BatchOutcome()
        already: dict[int, int | None] = {}
        any_outcome = False
        for alert_id in [a for a in alert_ids if a in enriched or a in rejected]:
            try:
                outcome, seen = await self._commit([alert_id], {k: v for k, v in enriched.items() if k == alert_id},
                                                   {k: v for k, v in rejected.items() if k == alert_id})
            except Exception as exc:
                if transient(exc):
                    raise
                reason = rejection_reason(exc)
                logger.warning("alert %s rejected: %s", alert_id, reason)
                await alerts_store.reject(self.db.pool, {alert_id: reason})
                already[alert_id] = None
                continue
            already.update(seen)
            if outcome is not None:
                any_outcome = True
                merged.incident_by_alert.update(outcome.incident_by_alert)
                merged.opened.extend(outcome.opened)
                merged.reanalyze.extend(outcome.reanalyze)
                merged.notified |= outcome.notified
        return (merged if any_outcome else None), already

    async def _commit(self, alert_ids: list[int], enriched: dict[int, intake.Enriched], rejected: dict[int, str]
                      ) -> tuple[intake.BatchOutcome | None, dict[int, int | None]]:
        async with self.db.pool.acquire() as conn, conn.transaction():
            locked = await alerts_store.lock_for_processing(conn, alert_ids)
            already = {r.id: r.incident_id for r in locked if r.processed}
            refused = {r.id: rejected[r.id] for r in locked if not r.processed and r.id in rejected}
            if refused:
                await alerts_store.reject(conn, refused)
                already.update(dict.fromkeys(refused))
                for alert_id, reason in refused.items():
                    logger.warning("alert %s rejected: %s", alert_id, reason)
            todo = [enriched[r.id] for r in locked if not r.processed and r.id in enriched]
            if not todo:
                return None, already
            outcome = await intake.process_batch(conn, todo, self._filters, self.config.processing)
        return outcome, already

    async def _sweep_forever(self) -> None:
        """Alerts committed without a (successful) processing call are picked up here: after a wake-up at
        once, otherwise once they are older than the gateway's own wait, so the two do not race."""
        grace = self.config.gateway.process_wait_s + 2.0
        woken = False
        while True:
            try:
                ids = await alerts_store.unprocessed_ids(self.db.pool, 0.0 if woken else grace, _BATCH)
                if ids:
                    await self.process(ids)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("sweep failed; retrying")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.work.poll_interval_s)
                woken = True
            except asyncio.TimeoutError:
                woken = False
            self._wake.clear()

    async def __del__(self) -> None:
        if getattr(self, "_fleet_watch", None) is not None:
            self._fleet_watch.cancel()
        if getattr(self, "_watches", None) is not None:
            await self._watches.stop()
        if getattr(self, "_sweeper", None) is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await super().__del__()
        try:  # nothing runs on the pool any more: close it rather than leave it to the process exit
            await asyncio.wait_for(self.db.close(), timeout=5)
        except Exception:
            logger.debug("database pool not closed cleanly", exc_info=True)
