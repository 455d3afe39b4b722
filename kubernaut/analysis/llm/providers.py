"""OpenAI SDK clients per provider, and each provider's defaults.

Every provider is reached through the ``openai`` SDK: OpenAI itself, Azure OpenAI
(``AsyncAzureOpenAI``), and OpenAI-compatible servers — Ollama, vLLM (also as the optional Serve
app ``llm``), llama.cpp's ``llama-server``, llama-cpp-python's server, or anything else at a base URL; and the
co-deployed ``llm`` app through a DeploymentHandle (``serve_handle``, kubernaut/analysis/llm/serve_handle.py).
"""

from __future__ import annotations

import os
from typing import Any

import httpx2
from openai import AsyncAzureOpenAI, AsyncOpenAI

from kubernaut.analysis.llm.serve_handle import HANDLE_BASE_URL, ServeHandleTransport
from kubernaut.config.settings import AnalysisConfig

OLLAMA_DEFAULT_URL = "http://127.0.0.1:11434/v1"

# How each provider gets structured output (testenv.md measured the self-hosted ones):
# llama-cpp-python's server answers 500 to json_schema but enforces json_object + schema.
DEFAULT_RESPONSE_FORMAT: dict[str, str] = {
    "openai": "json_schema",
    "azure": "json_schema",
    "vllm": "json_schema",
    "ollama": "json_schema",
    "compatible": "json_schema",
    "llama-cpp": "json_object",
    "serve_handle": "json_schema",  # the `llm` Serve app (vLLM) through a DeploymentHandle
}

# Hosted providers bill per token; self-hosted ones cost nothing per call unless prices are configured.
SELF_HOSTED = frozenset({"vllm", "ollama", "llama-cpp", "compatible", "serve_handle"})

# USD per 1,000 tokens for a few well-known hosted models; configured prices take precedence.
KNOWN_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"prompt": 0.00015, "completion": 0.0006},
    "gpt-4o": {"prompt": 0.0025, "completion": 0.01},
    "gpt-4.1-mini": {"prompt": 0.0004, "completion": 0.0016},
    "gpt-4.1": {"prompt": 0.002, "completion": 0.008},
}


class ProviderConfigError(ValueError):
    """The analysis config names a provider it does not give enough to reach."""


def response_format(cfg: AnalysisConfig) -> str:
    return cfg.llm_response_format or DEFAULT_RESPONSE_FORMAT[cfg.llm_provider]


def bounded_strings(cfg: AnalysisConfig) -> bool:
    """OpenAI's strict json_schema rejects maxLength; the self-hosted servers enforce it."""
    return not (cfg.llm_provider in ("openai", "azure") and cfg.llm_strict_schema)


def make_client(cfg: AnalysisConfig, http_client: Any | None = None) -> AsyncOpenAI:
    """The SDK client; retries are the SDK's (bounded by llm_max_retries), timeouts are set per call."""
    key = cfg.llm_api_key.get_secret_value() if cfg.llm_api_key else None
    common: dict[str, Any] = {"max_retries": cfg.llm_max_retries, "timeout": cfg.llm_request_timeout_s}
    if http_client is not None:
        common["http_client"] = http_client
    if cfg.llm_provider == "azure":
        endpoint = cfg.llm_base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ProviderConfigError("azure: llm_base_url (the resource endpoint) is required")
        return AsyncAzureOpenAI(
            azure_endpoint=endpoint, azure_deployment=cfg.azure_deployment, api_version=cfg.azure_api_version,
            api_key=key or os.environ.get("AZURE_OPENAI_API_KEY"), **common,
        )
    if cfg.llm_provider == "serve_handle":
        # The co-deployed `llm` app in this Ray cluster: the SDK as usual, the transport a DeploymentHandle.
        transport = httpx2.AsyncClient(transport=ServeHandleTransport(cfg.llm_serve_app), timeout=common["timeout"])
        return AsyncOpenAI(api_key="not-needed", base_url=HANDLE_BASE_URL, **{**common, "http_client": transport})
    if cfg.llm_provider == "openai":
        return AsyncOpenAI(api_key=key or os.environ.get("OPENAI_API_KEY"), base_url=cfg.llm_base_url, **common)
    base_url = cfg.llm_base_url or (OLLAMA_DEFAULT_URL if cfg.llm_provider == "ollama" else None)
    if not base_url:
        raise ProviderConfigError(f"{cfg.llm_provider}: llm_base_url is required")
    # Self-hosted servers usually need no key, but the SDK insists on one.
    return AsyncOpenAI(api_key=key or "not-needed", base_url=base_url, **common)


def estimate_cost(cfg: AnalysisConfig, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    prices = cfg.llm_prices.get(model) or (None if cfg.llm_provider in SELF_HOSTED else KNOWN_PRICES.get(model))
    if prices is None:
        return 0.0 if cfg.llm_provider in SELF_HOSTED else None
    return round(prompt_tokens / 1000 * prices.get("prompt", 0.0)
                 + completion_tokens / 1000 * prices.get("completion", 0.0), 6)
