"""LLM metrics: in-process counters (for ``llm_status()``) and Ray metrics (scraped from the Ray metrics
agent like every other Serve metric) when running inside a Ray worker."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

logger = logging.getLogger(__name__)


class LLMMetrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.tokens: Counter[str] = Counter()
        self.last_latency_ms: float | None = None
        self._ray: dict[str, Any] | None = None
        try:
            import ray
            from ray.util import metrics

            if ray.is_initialized():
                self._ray = {
                    "calls": metrics.Counter("kubernaut_llm_calls", "LLM calls by outcome",
                                             tag_keys=("model", "outcome")),
                    "tokens": metrics.Counter("kubernaut_llm_tokens", "LLM tokens", tag_keys=("model", "kind")),
                    "decisions": metrics.Counter("kubernaut_analysis_decisions", "Analyses by engine and fallback",
                                                 tag_keys=("engine", "fallback")),
                    "breaker": metrics.Gauge("kubernaut_llm_circuit_open", "1 while the LLM circuit breaker is open"),
                    "latency": metrics.Gauge("kubernaut_llm_last_latency_ms", "Latency of the last LLM call"),
                }
        except Exception:  # metrics are an aid, never a reason to fail an analysis
            logger.debug("Ray metrics unavailable", exc_info=True)
            self._ray = None

    def call(self, model: str, outcome: str, prompt_tokens: int = 0, completion_tokens: int = 0,
             latency_ms: float | None = None) -> None:
        self.counts[f"calls.{outcome}"] += 1
        self.tokens["prompt"] += prompt_tokens
        self.tokens["completion"] += completion_tokens
        if latency_ms is not None:
            self.last_latency_ms = latency_ms
        self._emit("calls", 1, {"model": model, "outcome": outcome})
        if prompt_tokens or completion_tokens:
            self._emit("tokens", prompt_tokens, {"model": model, "kind": "prompt"})
            self._emit("tokens", completion_tokens, {"model": model, "kind": "completion"})
        if latency_ms is not None:
            self._set("latency", latency_ms)

    def decision(self, engine: str, fallback: bool) -> None:
        self.counts[f"decisions.{'llm' if engine.startswith('llm:') else 'rules'}"] += 1
        if fallback:
            self.counts["fallbacks"] += 1
        self._emit("decisions", 1, {"engine": engine, "fallback": str(fallback).lower()})

    def breaker_open(self, is_open: bool) -> None:
        self._set("breaker", 1.0 if is_open else 0.0)

    def _emit(self, name: str, value: float, tags: dict[str, str]) -> None:
        if self._ray is not None and value:
            try:
                self._ray[name].inc(value, tags=tags)
            except Exception:
                logger.debug("metric %s failed", name, exc_info=True)

    def _set(self, name: str, value: float) -> None:
        if self._ray is not None:
            try:
                self._ray[name].set(value)
            except Exception:
                logger.debug("metric %s failed", name, exc_info=True)

    def snapshot(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "tokens": dict(self.tokens), "last_latency_ms": self.last_latency_ms}
