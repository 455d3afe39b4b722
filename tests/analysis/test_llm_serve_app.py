"""The `llm` Serve app (ray.serve.llm + vLLM on CPU) co-deployed with a Kubernaut app on one Ray cluster (the
session's), the analysis reaching it (a) through the app's OpenAI route over HTTP (provider vllm) and (b) through
a DeploymentHandle (provider serve_handle, kubernaut/analysis/llm/serve_handle.py). For each: a webhook goes in,
the analysis stored in PostgreSQL must carry the model's answer (its call, tokens, latency: see
_assert_llm_answered); the latency of both is recorded and printed (``LLM-PATH`` lines per incident and a ``RESULT``
line: run with -s; docs/evaluation.md). Runs when KUBERNAUT_TEST_VLLM=1
(tests/support/harness.py); it fails, never skips, when the path to the model is broken."""

from __future__ import annotations

import asyncio
import subprocess
import sysconfig
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from tests.support.harness import requires_vllm
from tests.support.live_app import Probe, deploy_application, fresh_database, kubernaut_application
from tests.support.llm_serve import ONE_REPLICA, control_plane_alert, llm_app_args
from tests.support.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.k8s, requires_vllm, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "llm-server.sh"
APP = "llm-cohosted"
LLM_APP = "llm"
TOKEN = "llm-cohosted-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL = "smollm2-135m"
DEPLOYMENTS = ("gateway", "processor", "analysis", "context", "orchestrator", "executor", "effectiveness",
               "intelligence", "notifications")


def _vllm_env() -> tuple[dict[str, Any], str]:
    """The runtime_env that gives a worker of this Python the vLLM venv's packages, and the model's directory."""
    proc = subprocess.run(["bash", str(SCRIPT), "vllm-build"], capture_output=True, text=True, timeout=1800,
                          stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        pytest.fail(f"scripts/llm-server.sh vllm-build failed:\n{proc.stderr[-4000:]}", pytrace=False)
    python, model_dir = proc.stdout.strip().splitlines()[-1].split()
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert site != sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": f"{site}:{REPO}", "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    return {"env_vars": env}, model_dir


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def llm_serve_app(serve_app: Any) -> AsyncIterator[str]:
    """The `llm` app on the session's Ray; yields its OpenAI base URL (through the session's Serve proxy)."""
    import ray
    from ray import serve

    from tests.support.llm_app import deploy_llm_app

    runtime_env, model_dir = await asyncio.to_thread(_vllm_env)
    build = ray.remote(num_cpus=0, runtime_env=runtime_env)(deploy_llm_app)
    await asyncio.wrap_future(build.remote(model_dir, runtime_env, LLM_APP, f"/{LLM_APP}").future())
    base = f"{serve_app.base_url}/{LLM_APP}/v1"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            async def ready() -> bool:
                try:
                    response = await client.get(f"{base}/models")
                    return response.status_code == 200 and MODEL in response.text
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=900, interval=2.0, what="the llm app serving the model")
        yield base
    finally:
        await asyncio.to_thread(serve.delete, LLM_APP)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app_dsn(pg_dsn: str) -> str:
    return await fresh_database(pg_dsn, "t_llmc")


def _kubernaut_args(app_dsn: str, app_kubeconfig: str, llm: dict[str, Any]) -> dict[str, Any]:
    """The Kubernaut app under /llm-cohosted with the analysis configured by ``llm``."""
    return llm_app_args(app_dsn, app_kubeconfig, TOKEN, {
        "llm_model": MODEL, "llm_max_completion_tokens": 640, "llm_incident_time_budget_s": 420,
        "llm_request_timeout_s": 400, "llm_max_retries": 0, **llm},
        lease_s=300,
        # No CPU reservations: the session's Ray has 2 CPUs, the session app and the llm app's engine hold them.
        deployments={name: {"num_cpus": 0, **(ONE_REPLICA if name == "analysis" else {})} for name in DEPLOYMENTS})


def _configured(provider: str) -> Probe:
    """Ready with the analysis on ``provider`` (a re-deployed app answers /ready before its analysis is updated)."""
    async def probe(client: httpx.AsyncClient, base: str) -> bool:
        try:
            info = (await client.get(f"{base}/api/v1/info")).json()["analysis"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return info.get("provider") == provider

    return probe


async def _deploy(serve_app: Any, app_dsn: str, app_kubeconfig: str, llm: dict[str, Any]) -> str:
    """Deploys the app (re-deploying updates it) and waits until its analysis uses ``llm``'s provider."""
    return await deploy_application(serve_app, APP, _kubernaut_args(app_dsn, app_kubeconfig, llm),
                                    ready=_configured(llm["llm_provider"]), headers=AUTH, timeout=240)


async def _decide(base: str, app_dsn: str, alertname: str) -> asyncpg.Record:
    conn = await asyncpg.connect(app_dsn)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30, headers=AUTH) as api:
            response = await api.post("/api/v1/alerts", json=control_plane_alert(alertname))
            assert response.status_code == 200, response.text
            (incident_id,) = response.json()["incident_ids"]

        async def row() -> asyncpg.Record | None:
            return await conn.fetchrow(
                "SELECT engine, fallback_reason, llm_provider, llm_model, llm_calls, prompt_tokens, completion_tokens,"
                " llm_latency_ms, latency_ms FROM analyses WHERE incident_id = $1 ORDER BY id DESC LIMIT 1",
                incident_id)

        return await eventually(row, timeout=600, interval=1.0, what=f"analysis of incident {incident_id}")
    finally:
        await conn.close()


def _assert_llm_answered(row: asyncpg.Record, provider: str) -> None:
    """The model answered through this path: the call, its tokens and latency are on the analysis. What this
    module proves is the path (HTTP, DeploymentHandle) to the co-hosted app; whether SmolLM2-135M's answer is a
    valid decision is the model's quality (in two CI runs it was cut off or out of range, and the rules decided).
    So the rules may decide here only after a real answer was refused as an answer; a provider error, a
    connection failure, an open circuit or a timeout (the path broken) fails the test. The LLM deciding is
    required in tests/analysis/test_llm_serve.py (llama-server, grammar-constrained output)."""
    assert (row["llm_provider"], row["llm_model"]) == (provider, MODEL), dict(row)
    assert row["llm_calls"] >= 1 and row["prompt_tokens"] > 100 and row["completion_tokens"] > 10, dict(row)
    assert 0 < row["llm_latency_ms"] <= row["latency_ms"], dict(row)
    if row["engine"] != f"llm:{MODEL}":
        reason = row["fallback_reason"] or ""
        assert not any(word in reason for word in ("provider error", "connection", "circuit", "did not answer",
                                                    "unusable", "timeout")), reason
        assert "valid answer" in reason or "rejected" in reason or "not valid JSON" in reason, reason


async def test_the_analysis_reaches_the_cohosted_llm_app_over_http_and_through_a_handle(
        llm_serve_app: str, serve_app: Any, app_dsn: str, app_kubeconfig: str, record_property: Any) -> None:
    latencies: dict[str, list[float]] = {"http": [], "handle": []}

    def measured(path: str, alertname: str, row: asyncpg.Record) -> None:
        """Printed as it comes (visible with -s, kept when a later assertion fails)."""
        latencies[path].append(row["llm_latency_ms"])
        print(f"\nLLM-PATH path={path} alert={alertname} engine={row['engine']} llm_calls={row['llm_calls']} "
              f"llm_latency_ms={row['llm_latency_ms']:.0f} analysis_latency_ms={row['latency_ms']:.0f} "
              f"prompt_tokens={row['prompt_tokens']} completion_tokens={row['completion_tokens']}", flush=True)

    # (a) HTTP: the llm app's OpenAI route through the session's Serve proxy.
    async with kubernaut_application(serve_app, APP, _kubernaut_args(
            app_dsn, app_kubeconfig, {"llm_provider": "vllm", "llm_base_url": llm_serve_app}),
            ready=_configured("vllm"), headers=AUTH, timeout=240) as base:
        for alertname in ("KubeSchedulerDown", "KubeControllerManagerDown"):
            row = await _decide(base, app_dsn, alertname)
            measured("http", alertname, row)
            _assert_llm_answered(row, "vllm")
        # (b) DeploymentHandle: the same app, its analysis now calling the llm app's ingress in-cluster.
        base = await _deploy(serve_app, app_dsn, app_kubeconfig,
                             {"llm_provider": "serve_handle", "llm_serve_app": LLM_APP})
        for alertname in ("KubeProxyDown", "KubeletDown"):
            row = await _decide(base, app_dsn, alertname)
            measured("handle", alertname, row)
            _assert_llm_answered(row, "serve_handle")
        async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
            info = (await client.get(f"{base}/api/v1/info")).json()["analysis"]
        # The window came from the llm app's model listing, through the handle.
        assert info["context_windows"] == {"source": "server", "models": {MODEL: 2048}}, info
    for path, values in latencies.items():
        record_property(f"llm_latency_ms_{path}", [round(v) for v in values])
    print(f"\nRESULT llm_app_paths http_ms={[round(v) for v in latencies['http']]} "
          f"handle_ms={[round(v) for v in latencies['handle']]}", flush=True)
