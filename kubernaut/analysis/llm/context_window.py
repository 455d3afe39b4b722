"""The model's context window: configured (``analysis.llm_context_tokens``), else what a self-hosted server
says in ``/v1/models`` (vLLM gives ``max_model_len``, ray.serve.llm's
``metadata.max_request_context_length``), else unknown (no trimming)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from openai import AsyncOpenAI

from kubernaut.analysis.llm.providers import SELF_HOSTED
from kubernaut.config.settings import AnalysisConfig

logger = logging.getLogger(__name__)

_PROBE_TIMEOUT_S = 5.0
# A server that did not answer the listing is asked again after this long, not on every incident.
_RETRY_AFTER_S = 60.0


class ContextWindows:
    def __init__(self, cfg: AnalysisConfig, client: AsyncOpenAI) -> None:
        self.cfg = cfg
        self.client = client
        self._known: dict[str, int | None] = {}  # model → window read from the server (None: not offered)
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()

    def snapshot(self) -> dict[str, Any]:
        if self.cfg.llm_context_tokens is not None:
            return {"source": "config", "tokens": self.cfg.llm_context_tokens}
        return {"source": "server", "models": dict(self._known)}

    async def get(self, model: str) -> int | None:
        if self.cfg.llm_context_tokens is not None:
            return self.cfg.llm_context_tokens
        if self.cfg.llm_provider not in SELF_HOSTED:
            return None  # hosted APIs list no window; configure it when a prompt could outgrow it
        if model in self._known:
            return self._known[model]
        if self._failed_at is not None and time.monotonic() - self._failed_at < _RETRY_AFTER_S:
            return None
        async with self._lock:
            if model not in self._known:
                await self._probe()
        return self._known.get(model)

    async def _probe(self) -> None:
        try:
            client = self.client.with_options(max_retries=0, timeout=_PROBE_TIMEOUT_S)
            page = await asyncio.wait_for(client.models.list(), timeout=_PROBE_TIMEOUT_S)
            entries = [entry.model_dump() for entry in page.data]
        except Exception as exc:  # the listing is optional; the chat call reports real outages
            self._failed_at = time.monotonic()
            logger.info("context window: /v1/models did not answer (%s); the prompt is not trimmed", exc)
            return
        self._failed_at = None
        for entry in entries:
            # vLLM's own server: max_model_len; ray.serve.llm's ingress: metadata.max_request_context_length.
            value = entry.get("max_model_len") or (entry.get("metadata") or {}).get("max_request_context_length")
            self._known[str(entry.get("id"))] = int(value) if isinstance(value, int) and value > 0 else None
        for model in (self.cfg.llm_model, self.cfg.llm_escalation_model):
            if model:
                self._known.setdefault(model, None)
