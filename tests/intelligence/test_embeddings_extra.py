"""The `embeddings` extra (packaged all-MiniLM-L6-v2 + sentence-transformers) really embeds, offline.

It needs torch; the test environment keeps one CPU torch, in the vLLM venv (scripts/llm-server.sh
embeddings-build), so the provider runs there, from this checkout, in a subprocess. Same gate as vLLM
(KUBERNAUT_TEST_VLLM=1; tests.support.harness).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.harness import requires_vllm

# embeddings-build builds the vLLM venv when it is missing (scripts/test.sh has built it).
BUILD_TIMEOUT_S = 1800.0
PROBE_TIMEOUT_S = 600.0

pytestmark = [
    pytest.mark.integration,
    requires_vllm,
    pytest.mark.llm,  # builds and runs the model environment of scripts/llm-server.sh
    pytest.mark.timeout(BUILD_TIMEOUT_S + PROBE_TIMEOUT_S + 60),  # pytest-timeout must not cut either wait
]

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import asyncio, json
import numpy as np
from kubernaut.config.settings import IntelligenceConfig
from kubernaut.intelligence.embeddings import DIMENSIONS, make_embedder
embedder = make_embedder(IntelligenceConfig(embedding_provider="minilm"))
texts = ["signal: KubePodOOMKilled | kind: Deployment | symptoms: pods.oom_killed",
         "signal: ContainerOOMKilled | kind: Deployment | symptoms: pods.oom_killed, pods.crashlooping",
         "signal: KubeNodeNotReady | kind: Node | symptoms: node.ready=false"]
oom, oom2, node = asyncio.run(embedder.embed(texts))
again = asyncio.run(embedder.embed(texts[:1]))[0]
print(json.dumps({"name": embedder.name, "dims": [len(v) for v in (oom, oom2, node)], "expected": DIMENSIONS,
                  "norm": float(np.linalg.norm(oom)), "oom_oom": float(oom @ oom2), "oom_node": float(oom @ node),
                  "stable": bool(np.allclose(oom, again, atol=1e-5))}))
"""


def test_minilm_provider_embeds_structured_incident_descriptions_offline() -> None:
    built = subprocess.run(["bash", str(ROOT / "scripts" / "llm-server.sh"), "embeddings-build"], capture_output=True,
                           text=True, timeout=BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    assert built.returncode == 0, built.stderr[-4000:]
    python = built.stdout.strip().splitlines()[-1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    probe = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env,
                           stdin=subprocess.DEVNULL, check=False, cwd="/")
    assert probe.returncode == 0, probe.stderr[-4000:]
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["name"] == "all-minilm-l6-v2"
    assert result["dims"] == [result["expected"]] * 3
    assert result["norm"] == pytest.approx(1.0, abs=1e-4)
    # Two OOM descriptions are closer to each other than to a node problem, and embedding is deterministic.
    assert result["oom_oom"] > result["oom_node"] + 0.1
    assert result["stable"]
