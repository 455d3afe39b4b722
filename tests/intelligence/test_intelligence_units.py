"""Embeddings (determinism, structure), descriptions, Wilson bound, provider selection."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from kubernaut.config.settings import IntelligenceConfig
from kubernaut.intelligence.embeddings import (
    DIMENSIONS,
    HashingEmbedder,
    MiniLMEmbedder,
    OpenAIEmbedder,
    hashed_vector,
    make_embedder,
    parse_description,
)
from kubernaut.intelligence.similarity import describe
from kubernaut.orchestration.autonomy import wilson_lower_bound

OOM = "signal: KubePodOOMKilled | kind: Deployment | symptoms: pods.crashlooping, pods.oom_killed"


def digest(vector: np.ndarray) -> str:
    return hashlib.sha256(np.round(vector, 6).astype(np.float32).tobytes()).hexdigest()


def test_hashed_embedding_is_deterministic_across_processes() -> None:
    here = digest(hashed_vector(OOM))
    code = ("import hashlib, numpy as np; from kubernaut.intelligence.embeddings import hashed_vector; "
            f"v = hashed_vector({OOM!r}); "
            "print(hashlib.sha256(np.round(v, 6).astype(np.float32).tobytes()).hexdigest())")
    # A fresh interpreter has another PYTHONHASHSEED: the vector must not depend on it.
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}).stdout.strip()
    assert here == other


def test_hashed_embedding_shape_norm_and_structure() -> None:
    v = hashed_vector(OOM)
    assert v.shape == (DIMENSIONS,) and v.dtype == np.float32
    assert float(np.linalg.norm(v)) == pytest.approx(1.0, abs=1e-5)
    same_problem = hashed_vector("signal: ContainerOOMKilled | kind: Deployment | symptoms: pods.oom_killed, "
                                 "pods.crashlooping")
    other_kind = hashed_vector("signal: KubePodOOMKilled | kind: StatefulSet | symptoms: pods.oom_killed, "
                               "pods.crashlooping")
    unrelated = hashed_vector("signal: KubeNodeNotReady | kind: Node")
    # Order of values does not matter; shared signal/symptoms weigh more than the kind.
    assert float(v @ hashed_vector("kind: Deployment | symptoms: pods.oom_killed, pods.crashlooping | "
                                   "signal: KubePodOOMKilled")) == pytest.approx(1.0, abs=1e-5)
    assert float(v @ other_kind) > float(v @ same_problem) > float(v @ unrelated)
    assert float(v @ unrelated) < 0.3
    assert not np.any(hashed_vector(""))  # empty text: zero vector, never NaN


def test_free_text_is_embedded_too() -> None:
    assert parse_description("pods keep OOM dying") == [("text", "pods"), ("text", "keep"), ("text", "OOM"),
                                                        ("text", "dying")]
    a, b = hashed_vector("memory limit too low"), hashed_vector("memory limit too low")
    assert float(a @ b) == pytest.approx(1.0, abs=1e-5)


def test_describe_keeps_structure_and_leaves_identity_out() -> None:
    text = describe(["KubePodOOMKilled", "KubePodCrashLooping"], "Deployment", "critical", "production",
                    {"pods.oom_killed": True, "pods.crashlooping": True, "pods.restarts": 7, "pods.image_pull_error":
                     False, "traits.stateful": True, "traits.gitops": False, "workload.kind": "Deployment",
                     "alert.reason": "OOMKilled"})
    assert text == ("signal: KubePodCrashLooping, KubePodOOMKilled | kind: Deployment | symptoms: pods.crashlooping, "
                    "pods.oom_killed, pods.restarts:many | traits: stateful | severity: critical | "
                    "environment: production")
    assert describe([], "Node") == "signal: unknown | kind: Node"


def test_wilson_lower_bound() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(4, 4) == pytest.approx(0.510, abs=0.001)
    assert wilson_lower_bound(95, 100) == pytest.approx(0.888, abs=0.001)
    assert wilson_lower_bound(0, 10) == 0.0
    assert wilson_lower_bound(5, 10) < wilson_lower_bound(50, 100) < 0.5


async def test_providers() -> None:
    assert isinstance(make_embedder(IntelligenceConfig()), HashingEmbedder)
    assert isinstance(make_embedder(IntelligenceConfig(embedding_provider="minilm")), MiniLMEmbedder)
    openai_embedder = make_embedder(IntelligenceConfig(embedding_provider="openai", embedding_model="m",
                                                       embedding_base_url="http://127.0.0.1:9/v1"))
    assert isinstance(openai_embedder, OpenAIEmbedder) and openai_embedder.name == "openai:m"
    with pytest.raises(ValueError):
        make_embedder(IntelligenceConfig(embedding_provider="openai"))
    vectors = await HashingEmbedder().embed([OOM, OOM])
    assert len(vectors) == 2 and np.array_equal(vectors[0], vectors[1])
