"""The investigation inside the Serve application: the analysis deployment, configured with ``analysis.llm_tools: on``
and a local OpenAI-protocol peer scripted to call tools, reads the real control plane through its own ClusterAPI;
every call is stored with the analysis in PostgreSQL and shown in the incident view."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from tests.support.live_app import fresh_database, kubernaut_application
from tests.support.llm_serve import llm_app_args
from tests.support.polling import eventually
from tests.support.tool_calling_llm import ToolCallingLLM, calls, tool_llm
from tests.support.webhooks import payload
from tests.support.workloads import crashlooping_deployment

pytestmark = [pytest.mark.integration, pytest.mark.k8s, pytest.mark.timeout(600)]

APP = "llm-tools-serve"
TOKEN = "llm-tools-admin-token"


@pytest.fixture(scope="module")
def peer() -> Iterator[ToolCallingLLM]:
    yield from tool_llm()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tools_app(serve_app: Any, pg_dsn: str, app_kubeconfig: str, peer: ToolCallingLLM
                    ) -> AsyncIterator[tuple[str, str]]:
    dsn = await fresh_database(pg_dsn, "t_tools")
    args = llm_app_args(dsn, app_kubeconfig, TOKEN, {
        "llm_provider": "compatible", "llm_base_url": peer.base_url, "llm_model": "scripted", "llm_max_retries": 0,
        "llm_tools": "on", "llm_max_repairs": 0}, lease_s=60)
    async with kubernaut_application(serve_app, APP, args) as base:
        yield base, dsn


async def test_the_analysis_deployment_investigates_the_real_cluster(
        tools_app: tuple[str, str], peer: ToolCallingLLM, kube_api_client: Any, kube_namespace: str) -> None:
    base, dsn = tools_app
    pod = await asyncio.to_thread(crashlooping_deployment, kube_api_client, kube_namespace, "web")
    peer.script(calls(("get_resource", {"kind": "Deployment", "name": "web"}), ("list_events", {"limit": 5})),
                calls(("get_resource", {"kind": "Secret", "name": "anything"})))
    body = payload("captured_am0.25_firing_prometheus_rule.json")
    body["alerts"][0]["labels"].update(namespace=kube_namespace, pod=pod, deployment="web", container="web")
    body["alerts"][0].pop("fingerprint")
    async with httpx.AsyncClient(base_url=base, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        response = await api.post("/api/v1/alerts", json=body)
        assert response.status_code == 200, response.text
        (incident_id,) = response.json()["incident_ids"]
        conn = await asyncpg.connect(dsn)
        try:
            async def stored() -> Any:
                return await conn.fetchrow("SELECT engine, fallback_reason, flags::text AS flags, llm::text AS llm "
                                           "FROM analyses WHERE incident_id = $1", incident_id)

            row = await eventually(stored, timeout=120, interval=1.0, what="the analysis")
        finally:
            await conn.close()
        usage = json.loads(row["llm"])
        calls_made = [(c["tool"], c["outcome"]) for c in usage["tool_calls"]]
        assert calls_made == [("get_resource", "ok"), ("list_events", "ok"), ("get_resource", "refused")], usage
        first = usage["tool_calls"][0]
        assert first["size"] > 100 and first["latency_ms"] > 0 and first["arguments"]["name"] == "web"
        # The deployment read the real Deployment through its ClusterAPI: the model was shown it, as data.
        shown = [m["content"] for m in peer.requests[1]["messages"] if m["role"] == "tool"]
        assert shown[0].startswith("<<<TOOL OUTPUT ") and '"registry.local/web:2"' in shown[0]
        # The refused Secret request ended the LLM phase: the rules decided and the record says why.
        assert row["engine"] == "rules" and "investigation ended: refused tool call: Secrets are never read" in \
            row["fallback_reason"], row["fallback_reason"]
        assert any("investigation" in flag for flag in json.loads(row["flags"])), row["flags"]
        view = (await api.get(f"/api/v1/incidents/{incident_id}")).json()
        assert [c["tool"] for c in view["analysis"]["llm"]["tool_calls"]] == ["get_resource", "list_events",
                                                                              "get_resource"]
        info = (await api.get("/api/v1/info")).json()["analysis"]
        assert info["tools"]["enabled"] is True and "tail_logs" in info["tools"]["available"]
    assert len(peer.requests) == 2 and all("tools" in r for r in peer.requests)

