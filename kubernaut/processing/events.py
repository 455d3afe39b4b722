"""Kubernetes Warning events as a second signal source (``processing.events``, opt-in).

Each replica of the Alert Processor lists, then watches, core/v1 Events with ``type=Warning`` (all
namespaces, or those configured) and turns the ones whose reason is configured into AlertManager-v4
alerts: ``BackOff`` → ``KubePodCrashLooping`` with ``reason=CrashLoopBackOff`` and so on, the names the
rules in ``kubernaut/analysis/rules.yaml`` know. The alerts go down the webhook's own path: committed by
:func:`kubernaut.storage.alerts.insert_webhook` (idempotent on fingerprint, startsAt, status), then the
processor opens or joins the incident of the owner workload.

One alert per (involved object uid, reason) and episode: the fingerprint is derived from them, so the
repeats of an event (its count going up, or a new Event object for the same pod and reason) are
occurrences of one firing alert, not new alerts. An alert that has not occurred again for
``resolve_after_s`` resolves itself: its firing row's ``endsAt`` is "last occurrence + resolve_after_s"
(AlertManager's meaning of endsAt on a firing alert), moved forward as occurrences arrive, and a
resolved row with the same fingerprint and startsAt is committed once it has passed. A new occurrence
after that fires a new episode (startsAt = that occurrence).

Several replicas: each cluster's source runs on one processor replica at a time, the holder of that cluster's
lease (``kubernaut.processing.watch_ownership``), so the watches are spread over the replicas. Duplicates would be
impossible all the same (a takeover, a replica that has not yet noticed it lost its lease): the decision to
insert, extend or resolve is taken per fingerprint under a PostgreSQL advisory lock, reading the latest row of
that fingerprint, and the insert itself is idempotent (unique dedup key) — two sources seeing the same event
commit one alert.

The cluster is read through ``kubernaut.cluster.api.ClusterAPI``, whose client is synchronous: the list
and every read of the watch stream run in this source's own small thread pool, so the event loop never
blocks and a long watch never starves the default executor used by the owner lookups. The stored side
(latest row per fingerprint, advisory locks) is ``kubernaut.storage.kube_events``.

Event messages, names and reasons come from anyone allowed to create Events: they are untrusted data.
Messages are stripped of control characters and truncated; nothing from an event is evaluated.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines

from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.errors import ApiError, Forbidden
from kubernaut.config.settings import EventSourceConfig
from kubernaut.models.alertmanager import WebhookAlert, WebhookPayload
from kubernaut.observability import metrics
from kubernaut.processing.event_signals import EventSignal, clean_text, event_to_signal
from kubernaut.storage import kube_events
from kubernaut.storage.alerts import insert_webhook

logger = logging.getLogger(__name__)

RECEIVER = "kubernetes-events"  # the alerts' `receiver` column: tells them from webhook alerts
_PAGE = 500


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


@dataclass
class _Tracked:
    """A firing event alert this replica knows of."""

    namespace: str | None
    ends_at: datetime | None  # as stored in the firing row: resolves then unless it occurs again
    last_seen: datetime | None  # latest occurrence this replica saw (None: known from the database only)


class EventSource:
    """List + watch Warning events, commit the configured ones as alerts, resolve the quiet ones."""

    def __init__(self, api: client.ApiClient | ClusterAPI, pool: asyncpg.Pool, config: EventSourceConfig, *,
                 on_committed: Callable[[], None] | None = None, request_timeout_s: float = 10.0,
                 clock: Callable[[], datetime] | None = None, cluster: str | None = None,
                 cluster_label: str = "cluster") -> None:
        # A fleet: one source per cluster, each labelling its alerts with its cluster (None: one cluster).
        self._cluster = cluster
        self._cluster_label = cluster_label
        self._api = api if api is None or isinstance(api, ClusterAPI) else ClusterAPI(api, request_timeout_s)
        self._pool = pool
        self._config = config
        self._on_committed = on_committed
        self._timeout = request_timeout_s
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._window = timedelta(seconds=config.resolve_after_s)
        # Extending endsAt on every repeat would write on every probe failure: only when it moves this much.
        self._slack = min(self._window / 10, timedelta(seconds=60))
        self._tracked: dict[str, _Tracked] = {}
        # One writer at a time per replica: at most two pool connections (lock + insert) for this source.
        self._write = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._responses: set[Any] = set()
        self._executor: ThreadPoolExecutor | None = None
        self.committed = 0  # alerts (firing and resolved) this replica inserted

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        targets: list[str | None] = list(self._config.namespaces) or [None]
        self._executor = ThreadPoolExecutor(max_workers=len(targets) + 1, thread_name_prefix="kube-events")
        self._tasks = [loop.create_task(self._watch_forever(ns), name=f"kube-events:{ns or '*'}") for ns in targets]
        if self._window:
            self._tasks.append(loop.create_task(self._sweep_forever(), name="kube-events:resolve"))
        logger.info("event source started: Warning events in %s, reasons %s",
                    ", ".join(self._config.namespaces) or "all namespaces", sorted(self._config.reasons))

    async def stop(self) -> None:
        """Cancel the loops and unblock the threads reading watch streams; returns once the loops ended."""
        for task in self._tasks:
            task.cancel()
        for resp in list(self._responses):
            _interrupt(resp)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- list + watch -------------------------------------------------------------------------------------

    async def _watch_forever(self, namespace: str | None) -> None:
        where = namespace or "all namespaces"
        cursor: dict[str, str | None] = {"rv": None}
        backoff = self._config.backoff_initial_s
        while True:
            try:
                if cursor["rv"] is None:
                    cursor["rv"] = await self._list(namespace)
                await self._watch(namespace, cursor)
                backoff = self._config.backoff_initial_s
                continue  # the server ended the watch (timeout): resume from the last resourceVersion
            except asyncio.CancelledError:
                raise
            except _Gone:
                logger.info("event watch (%s): resourceVersion expired, listing again", where)
                cursor["rv"] = None
                continue
            except ApiError as exc:
                if exc.status == 410:
                    cursor["rv"] = None
                    continue
                hint = " (RBAC: list/watch on events needed)" if isinstance(exc, Forbidden) else ""
                logger.warning("event watch (%s): API answered %s %s%s; retrying", where, exc.status,
                               exc.reason, hint)
            except Exception as exc:  # network, a bad line, the database: resume where we were
                logger.warning("event watch (%s) failed: %s: %s; retrying", where, type(exc).__name__, exc)
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self._config.backoff_max_s)

    def _list_page(self, namespace: str | None, token: str | None) -> dict[str, Any]:
        return self._api.list_page_blocking("Event", namespace, field_selector="type=Warning", limit=_PAGE,
                                            continue_token=token, timeout_s=self._timeout)

    async def _list(self, namespace: str | None) -> str:
        token = None
        while True:
            page = await self._run(self._list_page, namespace, token)
            for item in page.get("items") or []:
                await self.handle(item)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return str((page.get("metadata") or {}).get("resourceVersion") or "")

    def _open_watch(self, namespace: str | None, rv: str | None) -> Any:
        return self._api.open_watch_blocking("Event", namespace, field_selector="type=Warning", resource_version=rv,
                                             timeout_seconds=self._config.watch_timeout_s,
                                             connect_timeout_s=self._timeout)

    async def _watch(self, namespace: str | None, cursor: dict[str, str | None]) -> None:
        resp = await self._run(self._open_watch, namespace, cursor["rv"])
        self._responses.add(resp)
        try:
            lines = iter_resp_lines(resp)
            while True:
                line = await self._run(next, lines, None)
                if line is None:
                    return
                if not line:
                    continue
                change = json.loads(line)
                kind, obj = change.get("type"), change.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone()
                    raise ApiError(int(obj.get("code") or 500), str(obj.get("reason") or ""),
                                   clean_text(obj.get("message"), 200), "WATCH", "events")
                if kind in ("ADDED", "MODIFIED"):
                    await self.handle(obj)
                # Only once handled: a failure replays this event after the back-off.
                cursor["rv"] = (obj.get("metadata") or {}).get("resourceVersion") or cursor["rv"]
        finally:
            self._responses.discard(resp)
            resp.close()
            resp.release_conn()

    # -- events → alerts ----------------------------------------------------------------------------------

    async def handle(self, event: Any) -> bool:
        """One event (ADDED/MODIFIED or listed): returns whether an alert row was inserted. Database errors
        propagate (the watch replays the event after a back-off); a malformed event is skipped."""
        try:
            signal = event_to_signal(event, self._config, cluster=self._cluster, cluster_label=self._cluster_label)
        except Exception as exc:
            logger.warning("malformed event skipped: %s", type(exc).__name__)
            return False
        if signal is None:
            return False
        async with self._write:
            return await self._record(signal)

    def _ends(self, occurred: datetime) -> datetime | None:
        return occurred + self._window if self._window else None

    async def _record(self, signal: EventSignal) -> bool:
        fingerprint = signal.alert.fingerprint or ""
        ends = self._ends(signal.occurred_at)
        now = self._clock()
        known = self._tracked.get(fingerprint)
        if known is not None:
            known.last_seen = max(known.last_seen or signal.occurred_at, signal.occurred_at)
            # Firing, and this occurrence does not move its end enough to be worth a write.
            if ends is None or known.ends_at is None or ends <= known.ends_at + self._slack:
                return False
        if ends is not None and ends <= now:
            return False  # quiet for resolve_after_s already: an old event (first list, relist), not a signal
        async with kube_events.locked(self._pool, fingerprint) as conn:
            latest = await kube_events.latest(conn, RECEIVER, signal.namespace, fingerprint)
            if latest is not None and latest.status == "firing":
                stored_end = latest.ends_at
                if ends is not None and (stored_end is None or ends > stored_end):
                    await kube_events.extend_end(conn, latest.id, ends)
                    stored_end = ends
                self._track(fingerprint, signal, stored_end)
                return False
            if latest is None:
                starts = signal.alert.starts_at
            elif latest.ends_at is not None and (ends or signal.occurred_at) <= latest.ends_at:
                return False  # the occurrence that episode already ended with (a replay after a relist)
            else:
                starts = signal.occurred_at  # occurring again after it resolved: a new episode
            alert = signal.alert.model_copy(update={"starts_at": starts, "ends_at": ends})
            inserted = await self._insert(alert, f"k8s-event:{signal.event_ref}")
        self._track(fingerprint, signal, ends)
        if inserted:
            logger.info("event %s (%s x%d) → %s firing since %s", signal.event_ref,
                        signal.alert.labels.get("event_reason"), signal.count, signal.alert.labels["alertname"],
                        starts.isoformat())
        return inserted

    def _track(self, fingerprint: str, signal: EventSignal, ends_at: datetime | None) -> None:
        known = self._tracked.get(fingerprint)
        if known is None:
            self._tracked[fingerprint] = _Tracked(signal.namespace, ends_at, signal.occurred_at)
        else:
            known.ends_at = max(filter(None, (known.ends_at, ends_at)), default=None)
            known.last_seen = max(filter(None, (known.last_seen, signal.occurred_at)), default=None)

    async def _insert(self, alert: WebhookAlert, request_id: str) -> bool:
        payload = WebhookPayload.model_validate({"status": alert.status, "receiver": RECEIVER, "alerts": [alert]})
        stored = await insert_webhook(self._pool, payload, request_id[:64])
        if not stored[0].new:
            return False
        self.committed += 1
        # Counted with the webhook's alerts (same pipeline); `source=kubernetes-event` tells them apart.
        metrics.alert_received(alert.status or "firing")
        if self._on_committed is not None:
            self._on_committed()
        return True

    # -- synthetic resolution ------------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        adopted = False
        while True:
            try:
                if not adopted:
                    await self.adopt_firing()
                    adopted = True
                await self.resolve_quiet()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("event alert resolution failed; retrying")
            await asyncio.sleep(self._config.sweep_interval_s)

    async def adopt_firing(self) -> int:
        """Firing event alerts committed before this source started (maybe by a replica that is gone, or that
        owned this cluster's watch before): tracked so that they resolve even if their Event no longer exists.
        One scan at start-up; in a fleet only this cluster's (its owner resolves them)."""
        rows = await kube_events.firing(self._pool, RECEIVER, self._cluster_label if self._cluster else None,
                                        self._cluster)
        for row in rows:
            self._tracked.setdefault(row.fingerprint, _Tracked(row.namespace, row.ends_at, None))
        return len(rows)

    async def resolve_quiet(self) -> int:
        """Commit a resolved alert for every tracked firing alert whose end has passed; returns how many."""
        if not self._window:
            return 0
        resolved = 0
        now = self._clock()
        for fingerprint, known in list(self._tracked.items()):
            if known.ends_at is not None and known.ends_at > now:
                continue
            async with self._write:
                resolved += await self._resolve(fingerprint, known, now)
        return resolved

    async def _resolve(self, fingerprint: str, known: _Tracked, now: datetime) -> int:
        async with kube_events.locked(self._pool, fingerprint) as conn:
            latest = await kube_events.latest(conn, RECEIVER, known.namespace, fingerprint)
            if latest is None or latest.status != "firing":
                self._tracked.pop(fingerprint, None)
                return 0
            stored_end = latest.ends_at
            mine = self._ends(known.last_seen) if known.last_seen else None
            if mine is not None and mine > now and (stored_end is None or mine > stored_end):
                # An occurrence we saw but did not write (within the slack): extend instead of resolving.
                await kube_events.extend_end(conn, latest.id, mine, only_later=False)
                known.ends_at = mine
                return 0
            if stored_end is not None and stored_end > now:  # another replica saw it occur again
                known.ends_at = stored_end
                return 0
            # endsAt: the end of the last occurrence known (a later replay of it must not fire again).
            ends_at = max(filter(None, (stored_end, mine)), default=now)
            alert = WebhookAlert.model_validate({
                "status": "resolved", "labels": latest.labels, "annotations": latest.annotations,
                "startsAt": latest.starts_at, "endsAt": ends_at, "fingerprint": fingerprint})
            inserted = await self._insert(alert, f"k8s-event-resolve:{fingerprint}")
        self._tracked.pop(fingerprint, None)
        if inserted:
            logger.info("event alert %s %s resolved: no occurrence for %.0fs", latest.alertname, fingerprint,
                        self._window.total_seconds())
        return int(inserted)


def _interrupt(resp: Any) -> None:
    """Unblock a thread reading ``resp`` (urllib3 ≥ 2.3 shuts the socket down; older: close it)."""
    try:
        if hasattr(resp, "shutdown"):
            resp.shutdown()
        else:
            resp.close()
    except Exception:
        logger.debug("cannot interrupt a watch stream", exc_info=True)
