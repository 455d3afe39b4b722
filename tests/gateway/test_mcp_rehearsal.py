"""An assistant reading approvals over /mcp sees a dry-run rehearsal (execution.dry_run_approvals) as one, as the
REST record says it. Fast tier."""

from __future__ import annotations

from datetime import datetime, timezone

from kubernaut.config.settings import KubernautConfig
from kubernaut.gateway.mcp.tools import Untrusted, approval_model

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
ITEM = {"id": 3, "incident_id": 2, "status": "pending", "action": "increase_memory_limits",
        "target": {"kind": "Deployment", "name": "web", "namespace": "default"}, "parameters": {"factor": 1.5},
        "reason": "production needs confidence of at least 0.8", "requested_at": NOW, "expires_at": NOW}


def test_the_mcp_approval_carries_the_rehearsal_flag() -> None:
    untrusted = Untrusted(KubernautConfig())
    assert approval_model({**ITEM, "rehearsal": True}, untrusted).rehearsal is True
    assert approval_model(ITEM, untrusted).rehearsal is False
