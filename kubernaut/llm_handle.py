"""The `llm` Serve app's ingress with one more method, for callers in the same Ray cluster.

``build_openai_app`` (ray.serve.llm) serves the OpenAI routes over HTTP through its ``OpenAiIngress``. This
subclass adds ``chat_json``: the same chat completion for a DeploymentHandle caller, taking and returning
plain JSON-shaped dicts (the request body, then the status and the response body the HTTP route would give).
Plain dicts because the caller — Kubernaut's analysis deployment — runs without vLLM installed and cannot
unpickle vLLM's request and response classes. Use it in the app's args::

    ingress_cls_config: {ingress_cls: "kubernaut.llm_handle:HandleIngress"}

This module runs in the `llm` app's environment (ray.serve.llm + vLLM): it imports nothing from Kubernaut.
"""

from __future__ import annotations

from typing import Any

# The internal classes: the server yields the internal ErrorResponse (the public one is a subclass of it).
from ray.llm._internal.serve.core.configs.openai_api_models import ChatCompletionRequest, ErrorResponse
from ray.serve.llm.ingress import OpenAiIngress


class HandleIngress(OpenAiIngress):  # type: ignore[misc]
    async def models_json(self) -> dict[str, Any]:
        """GET /v1/models' body."""
        return (await self.models()).model_dump(mode="json")

    async def chat_json(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One non-streaming chat completion: (HTTP status, OpenAI response or error body)."""
        try:
            request = ChatCompletionRequest.model_validate({**body, "stream": False})
        except ValueError as exc:
            return 400, {"error": {"message": str(exc)[:2000], "type": "invalid_request_error", "code": 400}}
        try:
            chunk = await self._get_response(body=request, call_method="chat").__anext__()
        except StopAsyncIteration:
            return 502, {"error": {"message": "the model gave no response", "type": "server_error", "code": 502}}
        except Exception as exc:  # e.g. an unknown model: the HTTP route's status where it has one
            status = int(getattr(exc, "status_code", 500) or 500)
            return status, {"error": {"message": str(exc)[:2000], "type": type(exc).__name__, "code": status}}
        if isinstance(chunk, ErrorResponse):
            code = int(chunk.error.code or 500)
            return code, {"error": chunk.error.model_dump()}
        return 200, chunk.model_dump(mode="json")
