"""A live change that a GitOps controller put back is ``reverted_by_gitops``, not "ineffective" or merely
"inconclusive" (kubernaut/effectiveness/monitor.py ``_drift``, scoring.combine)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kubernaut.effectiveness import scoring
from kubernaut.effectiveness.models import Component, TargetState
from kubernaut.effectiveness.monitor import _drift
from kubernaut.gitops.detect import is_controller_manager

WEIGHTS = {"health": 0.5, "alert": 0.3, "metrics": 0.2}


def judged(writer: str) -> tuple[str, list[str]]:
    taken = datetime.now(timezone.utc) - timedelta(seconds=30)
    baseline = {"spec_hash": "before", "generation": 2, "taken_at": taken.isoformat(), "late": False}
    state = TargetState(exists=True, kind="Deployment", spec_hash="after", generation=3,
                        managers=[(writer, datetime.now(timezone.utc)), ("kubernaut-executor", taken)])
    drift = _drift(state, baseline, trusted=True)
    components = {"drift": drift, "health": Component(name="health", value=0.2, reason="pods OOMKilled again")}
    _, verdict, reasons = scoring.combine(components, WEIGHTS, 0.8, 0.4)
    return verdict, reasons


@pytest.mark.parametrize("writer", ["argocd-application-controller", "argocd-controller", "kustomize-controller",
                                    "helm-controller"])
def test_a_gitops_controller_writing_after_the_action_is_reverted_by_gitops(writer: str) -> None:
    verdict, reasons = judged(writer)
    assert verdict == "reverted_by_gitops" and any(writer in r for r in reasons)


@pytest.mark.parametrize("writer", ["kubectl-edit", "kubectl-client-side-apply", "argocdish"])
def test_other_writers_stay_inconclusive(writer: str) -> None:
    assert judged(writer)[0] == "inconclusive"
    assert not is_controller_manager(writer)
