"""One learning signature: the four computations it replaced (orchestration/engine.py, intelligence/feedback.py,
intelligence/similarity.py, analysis/learning.py) and the assessment's fallback give the same key."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from kubernaut.analysis.learning import situation_signature
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signature import signature_of


def _old_from_incident_row(incident: dict[str, Any]) -> str:
    # The expression engine.py, feedback.py and similarity.py each spelled out before models/signature.py.
    return f"{(incident['signals'] or ['unknown'])[0]}:{incident['target_kind']}"


def _old_from_situation(situation: Any) -> str:
    # analysis/learning.py before models/signature.py.
    first = situation.signals[0].alertname if situation.signals else "unknown"
    return f"{first}:{situation.incident_target.kind}"


@pytest.mark.parametrize("signals", [["KubePodOOMKilled"], ["A", "B"], [], None])
@pytest.mark.parametrize("kind", ["Deployment", "Node"])
def test_every_old_computation_agrees_with_the_one_definition(signals: list[str] | None, kind: str) -> None:
    expected = signature_of(signals, kind)
    assert _old_from_incident_row({"signals": signals, "target_kind": kind}) == expected
    situation = SimpleNamespace(signals=[SimpleNamespace(alertname=s) for s in signals or []],
                                incident_target=ResourceRef(kind=kind, name="x", namespace="ns"))
    assert _old_from_situation(situation) == expected
    assert situation_signature(situation) == expected  # type: ignore[arg-type]
    assert expected == f"{(signals or ['unknown'])[0]}:{kind}"


def test_examples() -> None:
    assert signature_of(["KubePodOOMKilled", "KubePodCrashLooping"], "Deployment") == "KubePodOOMKilled:Deployment"
    assert signature_of([], "Node") == "unknown:Node"
