"""LLM metrics: in-process counters (for ``llm_status()``) and Ray metrics (scraped from the Ray metrics
agent like every other Serve metric) when running inside a Ray worker."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from kubernaut.observability import metrics as obs

logger = logging.getLogger(__name__)


class LLMMetrics:
    """In-process counts for ``llm_status()``; Ray metrics through kubernaut.observability (one set of names)."""

    def __init__(self, provider: str = "default") -> None:
        self.counts: Counter[str] = Counter()
        self.tokens: Counter[str] = Counter()
        self.last_latency_ms: float | None = None
        self.provider = provider

    def call(self, model: str, outcome: str, prompt_tokens: int = 0, completion_tokens: int = 0,
             latency_ms: float | None = None) -> None:
        self.counts[f"calls.{outcome}"] += 1
        self.tokens["prompt"] += prompt_tokens
        self.tokens["completion"] += completion_tokens
        if latency_ms is not None:
            self.last_latency_ms = latency_ms
        try:
            obs.llm_request(model, outcome)
            if prompt_tokens or completion_tokens:
                obs.llm_usage(model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        except Exception:  # metrics are an aid, never a reason to fail an analysis
            logger.debug("LLM metrics failed", exc_info=True)

    def decision(self, engine: str, fallback: bool) -> None:
        self.counts[f"decisions.{'llm' if engine.startswith('llm:') else 'rules'}"] += 1
        if fallback:
            self.counts["fallbacks"] += 1

    def breaker_open(self, is_open: bool) -> None:
        try:
            obs.llm_circuit_state(self.provider, "open" if is_open else "closed")
        except Exception:
            logger.debug("LLM circuit metric failed", exc_info=True)

    def snapshot(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "tokens": dict(self.tokens), "last_latency_ms": self.last_latency_ms}
