"""The analysis's LLM inside a Kubernaut app of its own (tests/analysis/test_llm_*serve*.py): the app's arguments
(an admin token, one analysis replica) and a control-plane alert for it to decide."""

from __future__ import annotations

from typing import Any

from kubernaut.identity.static_tokens import hash_token
from tests.support.webhooks import payload

#: One analysis replica: the breaker and the tool registry are per replica, and /api/v1/info must ask the one
#: that saw the calls.
ONE_REPLICA: dict[str, Any] = {"autoscaling": {"min_replicas": 1, "max_replicas": 1}}


def llm_app_args(dsn: str, kubeconfig: str, token: str, analysis: dict[str, Any], *, lease_s: float,
                 deployments: dict[str, Any] | None = None) -> dict[str, Any]:
    """The app's arguments (for tests.support.live_app.kubernaut_application): ``token`` is an admin's, a job's
    lease is ``lease_s`` (it must outlast the model's answer), ``deployments`` default to one analysis replica."""
    return {
        "storage": {"dsn": dsn},
        "kubernetes": {"kubeconfig": kubeconfig},
        "gateway": {"tokens": [{"name": "llm-admin", "roles": ["admin"], "hash": hash_token(token)}]},
        "work": {"poll_interval_s": 0.5, "lease_s": lease_s},
        "analysis": analysis,
        "deployments": deployments if deployments is not None else {"analysis": ONE_REPLICA},
    }


def control_plane_alert(alertname: str) -> dict[str, Any]:
    """An AlertManager webhook about the control plane: its incident is the cluster itself, so the prompt and the
    schema stay small enough for a 135M model on 2 shared cores (a workload's live context makes a prompt of over
    2,000 tokens, which took minutes under load)."""
    body = payload("captured_am0.25_firing_prometheus_rule.json")
    body["alerts"][0]["labels"] = {"alertname": alertname, "severity": "critical", "job": "kube-scheduler"}
    body["alerts"][0].pop("fingerprint")
    body["commonLabels"], body["groupLabels"] = {"alertname": alertname}, {"alertname": alertname}
    return body
