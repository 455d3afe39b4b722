"""Shared fixtures: real PostgreSQL+pgvector (embedded), a real local Ray cluster running the Serve
app, real notification sinks, and (through the plugin) the real kube-apiserver test control plane."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from tests.support.live_app import fresh_database
from tests.support.polling import eventually
from tests.support.sinks import HttpSink, SmtpSink, free_port

pytest_plugins = ["tests.plugins.kube_testenv", "tests.plugins.alertmanager", "tests.plugins.llm_server",
                  "tests.plugins.prometheus", "tests.plugins.components"]

TEST_DATA = Path(__file__).resolve().parent / "data"

# Tests must never join a developer's running cluster, nor need its token.
os.environ.pop("RAY_ADDRESS", None)
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def pg_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pgdata", numbered=True)


@pytest.fixture(scope="session")
def pg_dsn(pg_data_dir: Path) -> Iterator[str]:
    """The embedded server, exactly as the app starts it (same helper, same data directory)."""
    from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

    dsn = ensure_embedded_server(pg_data_dir)
    yield dsn
    stop_embedded_server(pg_data_dir)


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_dsn(pg_dsn: str) -> AsyncIterator[str]:
    """A new, empty database on the embedded server for one test."""
    yield await fresh_database(pg_dsn, "t")


@pytest.fixture(scope="session")
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


class ServeHarness:
    """A real local Ray cluster running the Kubernaut Serve application."""

    def __init__(self, config: Any, port: int) -> None:
        self.config = config
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        from ray import serve

        from kubernaut.app import build_app

        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        serve.run(build_app(self.config), name="kubernaut", route_prefix="/", blocking=False)

    def stop(self) -> None:
        """Stop Serve entirely: controller, proxy and every replica."""
        from ray import serve

        serve.shutdown()

    async def wait_ready(self, timeout: float = 120.0) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as client:
            async def ready() -> bool:
                try:
                    return (await client.get("/ready")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=timeout, what="gateway /ready")


@pytest.fixture(scope="session")
def app_kubeconfig(request: pytest.FixtureRequest) -> str:
    """The app talks to the real test control plane unless it is switched off for this run."""
    if os.environ.get("KUBERNAUT_TESTENV_SKIP") == "1":
        return "/nonexistent/kubeconfig"
    return request.getfixturevalue("kube_testenv").admin_kubeconfig


#: The session app's static tokens: token → (principal name, roles, approve_namespaces). test-token-1 (the ``api``
#: fixture) and test-token-2 are admins; the others have one role each (tests/gateway/test_identity_serve.py).
TEST_TOKENS: dict[str, tuple[str, list[str], list[str]]] = {
    "test-token-1": ("test-admin", ["admin"], []),
    "test-token-2": ("test-admin-2", ["admin"], []),
    "test-token-flood": ("test-flood", ["ingest"], []),
    "test-token-ingest": ("test-ingest", ["ingest"], []),
    "test-token-viewer": ("test-viewer", ["viewer"], []),
    "test-token-approver-a": ("test-approver-a", ["viewer", "approver"], ["team-a"]),
}


def gateway_tokens() -> list[dict[str, Any]]:
    """gateway.tokens for :data:`TEST_TOKENS`: by hash, as production configures them."""
    from kubernaut.identity.static_tokens import hash_token

    return [{"name": name, "roles": roles, "approve_namespaces": namespaces, "hash": hash_token(token)}
            for token, (name, roles, namespaces) in TEST_TOKENS.items()]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def serve_app(pg_data_dir: Path, pg_dsn: str, http_sink: HttpSink, smtp_sink: SmtpSink, app_kubeconfig: str
                    ) -> AsyncIterator[ServeHarness]:
    import ray
    from ray import serve

    from kubernaut.config import load_config

    config = load_config({
        "cluster_name": "test",
        "storage": {"data_dir": str(pg_data_dir)},
        "notifications": {"urls": [http_sink.apprise_url, smtp_sink.apprise_url], "timeout_s": 10},
        "work": {"poll_interval_s": 0.5, "lease_s": 30},
        # Kubernetes identities too, checked against the test control plane with the app's (admin) credentials
        # (not when the control plane is switched off: see app_kubeconfig).
        "gateway": {"tokens": gateway_tokens(),
                    "kubernetes": {"enabled": os.environ.get("KUBERNAUT_TESTENV_SKIP") != "1"},
                    "max_body_bytes": 65536,
                    "max_alerts_per_request": 500, "rate_limit_per_s": 20, "rate_limit_burst": 60},
        "kubernetes": {"kubeconfig": app_kubeconfig},
        "mcp": {"allow_decisions": True},  # decide_approval is tested over /mcp (tests/gateway/test_mcp_serve.py)
    })
    ray.init(include_dashboard=False, num_cpus=2, log_to_driver=os.environ.get("KUBERNAUT_TEST_RAY_LOGS") == "1")
    harness = ServeHarness(config, free_port())
    await asyncio.to_thread(harness.start)
    await harness.wait_ready()
    yield harness
    serve.shutdown()
    ray.shutdown()


@pytest_asyncio.fixture(loop_scope="session")
async def api(serve_app: ServeHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=serve_app.base_url, timeout=30,
                                 headers={"Authorization": "Bearer test-token-1"}) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def db(serve_app: ServeHarness, pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the app's database, to assert on rows."""
    from kubernaut.storage.database import _init_connection

    conn = await asyncpg.connect(pg_dsn)
    await _init_connection(conn)
    yield conn
    await conn.close()
