"""Configuration of the MCP server (issue 16, section 2): ``/mcp`` on the gateway, for assistants and agents.

Who may call it and what each principal may do are the REST API's (``gateway.tokens``, ``gateway.kubernetes``,
``gateway.oidc`` and the roles); this section only says whether it is served and whether it may decide.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class McpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Read-only by default: decide_approval (approve/reject as the calling principal, approver role and the
    # namespace grant still required) is offered only when this is set (KUBERNAUT_MCP__ALLOW_DECISIONS=true).
    allow_decisions: bool = False
    # Bounds of one tool answer: an agent's context is small, and a storm's incident has thousands of alerts.
    max_items: int = Field(default=100, ge=1, le=1000)
    max_text_chars: int = Field(default=4000, ge=200, le=100_000)
