"""Pytest plugin: the markers saying which real components a test starts, derived from its fixtures, and
checked against the processes it really starts.

Markers (registered in pyproject.toml; select with ``-m``):

* ``postgres`` — embedded PostgreSQL+pgvector; ``ray`` — a local Ray cluster (the Serve app);
  ``kube`` — the kube-apiserver test control plane (scripts/testenv.sh); ``llm`` — a local model server
  (llama-server, vLLM).
* ``slow`` — added to every test with a component marker (and kept where a module sets it: runs for minutes).
  ``pytest -m "not slow"`` is the fast tier: pure unit tests, no component started.
* ``integration`` (any component) and ``k8s`` (``kube``) are derived the same way, for the selections that
  still name them.

A test gets a component marker from the fixtures it uses (``COMPONENT_FIXTURES``: every fixture that starts
a component, with everything it depends on reached through pytest's fixture closure), or from its module
(``pytestmark``) where the test starts the component in its body. The check: a test that starts a component
process during its setup or call without that component's marker fails — the markers can not drift from
what the tests do. Teardown is not checked: session fixtures stop their component after the last test,
whichever it is.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import PurePath

import pytest

COMPONENTS = {  # the component markers, as pyproject.toml describes them
    "postgres": "starts the embedded PostgreSQL+pgvector server",
    "ray": "starts a local Ray cluster (the Serve app)",
    "kube": "needs the kube-apiserver test control plane (scripts/testenv.sh)",
    "llm": "starts a local model server (llama-server or vLLM)",
}

# Fixture → the components it starts. Fixtures depending on these (api, db, fresh_dsn, kube_namespace,
# the executor harness, ...) need no entry: pytest's fixture closure of a test includes them.
COMPONENT_FIXTURES: dict[str, frozenset[str]] = {
    "pg_dsn": frozenset({"postgres"}),                     # tests/conftest.py
    # tests/conftest.py; also kube: app_kubeconfig asks for kube_testenv by name (getfixturevalue).
    "serve_app": frozenset({"ray", "postgres", "kube"}),
    "kube_testenv": frozenset({"kube"}),                   # tests/plugins/kube_testenv.py
    "llm_binary": frozenset({"llm"}),                      # tests/plugins/llm_server.py
    "chaos_pg": frozenset({"postgres"}),                   # tests/system/test_fault_injection.py
    "dev_cluster": frozenset({"ray"}),                     # tests/observability/test_metrics_export.py
    "vllm_app": frozenset({"ray", "llm"}),                 # tests/analysis/test_llm_vllm.py
    "llm_serve_app": frozenset({"ray", "llm"}),            # tests/analysis/test_llm_serve_app.py
}
# Fixtures that start a real server process outside the four components: slow, with no component marker.
SLOW_FIXTURES = frozenset({"alertmanager_for", "prometheus_stack",  # tests/plugins/{alertmanager,prometheus}.py
                           "git_server"})  # tests/gitops: git daemon

# Executables (or scripts run by a shell or Python) that are a component's processes.
_PROCESSES = {
    "postgres": ("postgres", "pg_ctl", "initdb"),
    "ray": ("raylet", "gcs_server", "ray", "serve", "run.sh", "ray-dev-cluster.sh"),
    "kube": ("testenv.sh", "kube-apiserver", "etcd"),
    "llm": ("llama-server", "llm-server.sh", "vllm"),
}
_COMPONENT_OF = {name: component for component, names in _PROCESSES.items() for name in names}
_INTERPRETERS = ("bash", "sh", "python", "python3")

_spawned: list[tuple[str, str]] | None = None  # (component, command) while a test's setup or call runs


def _component(argv: object) -> str | None:
    if isinstance(argv, (str, bytes)):
        argv = [argv]
    try:
        words = [PurePath(str(w if isinstance(w, str) else bytes(w).decode(errors="replace"))).name
                 for w in list(argv)[:2]]
    except TypeError:
        return None
    if not words:
        return None
    if words[0].rstrip("0123456789.") in _INTERPRETERS and len(words) > 1:
        return _COMPONENT_OF.get(words[1])
    return _COMPONENT_OF.get(words[0])


def _audit(event: str, args: tuple) -> None:
    if _spawned is None or event not in ("subprocess.Popen", "os.posix_spawn", "os.exec"):
        return
    argv = args[1] if len(args) > 1 and args[1] is not None else args[0]
    component = _component(argv)
    if component:
        _spawned.append((component, " ".join(map(str, argv if isinstance(argv, (list, tuple)) else [argv]))[:200]))


def pytest_configure(config: pytest.Config) -> None:
    sys.addaudithook(_audit)


def components_of(item: pytest.Item) -> set[str]:
    """The components a test starts: its fixtures' and its explicit markers'."""
    found = {c for name in getattr(item, "fixturenames", ()) for c in COMPONENT_FIXTURES.get(name, ())}
    return found | {m.name for m in item.iter_markers() if m.name in COMPONENTS}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        components = components_of(item)
        for name in sorted(components):
            item.add_marker(name)
        if components:
            item.add_marker("integration")
        if "kube" in components:
            item.add_marker("k8s")
        if components or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("slow")


def _checked(item: pytest.Item, phase: str) -> Iterator[None]:
    global _spawned
    _spawned = []
    try:
        yield
    finally:
        spawned, _spawned = _spawned, None
    allowed = {m.name for m in item.iter_markers() if m.name in COMPONENTS}
    unmarked = [(c, cmd) for c, cmd in spawned if c not in allowed]
    if unmarked:
        pytest.fail(f"{item.nodeid} started {sorted({c for c, _ in unmarked})} during {phase} without the "
                    f"marker (first: {unmarked[0][1]!r}): add the fixture to COMPONENT_FIXTURES "
                    "(tests/plugins/components.py) or mark the module", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _checked(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _checked(item, "call"))
