"""Pytest plugin: a real Kubernetes control plane for tests (scripts/testenv.sh).

Fixtures:

* ``kube_testenv`` (session): starts the environment once (``scripts/testenv.sh up``; a running one
  is reused) and returns a :class:`KubeTestEnv` with the admin, rightless and executor kubeconfigs.
  ``KUBERNAUT_TESTENV_SKIP=1`` skips every test that needs it. The environment is left running after
  the session (reruns are fast); ``KUBERNAUT_TESTENV_TEARDOWN=1`` tears it down at the end.
* ``kube_api_client`` (session): a ``kubernetes.client.ApiClient`` for the admin user.
* ``kube_namespace`` (function): a fresh namespace labelled ``kubernaut.ai/managed: "true"``,
  deleted after the test.

Register with ``pytest_plugins = ["tests.plugins.kube_testenv"]`` in the root conftest.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support.harness import fixture_budget_s, timeout_limit_s

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTENV_SCRIPT = REPO_ROOT / "scripts" / "testenv.sh"
MANAGED_LABEL = "kubernaut.ai/managed"
# A cold `up` builds kube-apiserver & co. from source first (~5 min on 2 cores); scripts/test.sh builds before
# pytest starts. The wait is capped below pytest-timeout's limit (tests.support.harness.fixture_budget_s).
UP_TIMEOUT_S = float(os.environ.get("KUBERNAUT_TESTENV_UP_TIMEOUT", "1500"))

T = TypeVar("T")


@dataclass(frozen=True)
class KubeTestEnv:
    admin_kubeconfig: str
    rightless_kubeconfig: str
    executor_kubeconfig: str
    state_dir: str

    def api_client(self, kubeconfig: str | None = None):
        """A new ApiClient for ``kubeconfig`` (default: admin). The caller closes it."""
        from kubernetes import config

        return config.new_client_from_config(config_file=kubeconfig or self.admin_kubeconfig)


def wait_until(predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.2, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; return it. Fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = predicate()
        except Exception as e:  # keep polling through transient API errors
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "k8s: needs the real kube-apiserver test control plane")


def _run_testenv(cmd: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(TESTENV_SCRIPT), cmd],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def kube_testenv(request: pytest.FixtureRequest) -> Iterator[KubeTestEnv]:
    if os.environ.get("KUBERNAUT_TESTENV_SKIP") == "1":
        pytest.skip("KUBERNAUT_TESTENV_SKIP=1: Kubernetes test control plane disabled")
    if not TESTENV_SCRIPT.exists():
        pytest.skip(f"{TESTENV_SCRIPT} not found")
    budget = fixture_budget_s(request.config, UP_TIMEOUT_S)
    try:
        proc = _run_testenv("up", budget)
    except subprocess.TimeoutExpired:
        pytest.fail(f"scripts/testenv.sh up did not finish within {budget:.0f}s (pytest-timeout "
                    f"{timeout_limit_s(request.config):.0f}s): build the control plane first with "
                    "`bash scripts/testenv.sh build` (scripts/test.sh does)", pytrace=False)
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        pytest.fail(
            f"scripts/testenv.sh up failed (exit {proc.returncode}); set KUBERNAUT_TESTENV_SKIP=1 to skip "
            f"Kubernetes tests.\n--- stderr (tail) ---\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    admin = Path(lines[-1])
    if not admin.is_absolute() or not admin.is_file():
        pytest.fail(f"scripts/testenv.sh up printed no kubeconfig path: {lines[-1]!r}", pytrace=False)
    state = admin.parent
    env = KubeTestEnv(
        admin_kubeconfig=str(admin),
        rightless_kubeconfig=str(state / "rightless.kubeconfig"),
        executor_kubeconfig=str(state / "executor.kubeconfig"),
        state_dir=str(state),
    )
    yield env
    if os.environ.get("KUBERNAUT_TESTENV_TEARDOWN") == "1":
        _run_testenv("down", 120)


@pytest.fixture(scope="session")
def kube_api_client(kube_testenv: KubeTestEnv):
    api = kube_testenv.api_client()
    yield api
    api.close()


_SERVER_MINOR: dict[str, int] = {}


def _server_minor(api_client) -> int:
    host = api_client.configuration.host
    if host not in _SERVER_MINOR:
        from kubernetes import client

        minor = client.VersionApi(api_client).get_code().minor
        _SERVER_MINOR[host] = int(re.match(r"\d+", minor).group())
    return _SERVER_MINOR[host]


@pytest.fixture
def kube_namespace(kube_api_client, request: pytest.FixtureRequest) -> Iterator[str]:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(kube_api_client)
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={MANAGED_LABEL: "true"})))
    # Pods are rejected until the controller-manager has created the default ServiceAccount and,
    # before Kubernetes 1.24, its token Secret (ServiceAccount admission plugin).
    needs_secret = _server_minor(kube_api_client) < 24

    def sa_ready() -> bool:
        sa = core.read_namespaced_service_account("default", name)
        return bool(sa.secrets) or not needs_secret

    wait_until(sa_ready, timeout=60, what=f"default ServiceAccount (and token) in {name}")
    yield name
    try:
        core.delete_namespace(name, body=client.V1DeleteOptions(propagation_policy="Background"))
    except ApiException as e:
        if e.status != 404:
            raise
