"""The learning signature: the kind of incident that outcomes are counted for.

``"{first alert name}:{target kind}"`` — e.g. ``"KubePodOOMKilled:Deployment"``. The workflow stores it,
the assessment copies it, the statistics and the ranking are keyed by it, and the analysis asks for
evidence with it, so all of them must compute it here. The SQL that derives it from ``incidents`` in
kubernaut/storage/ (``coalesce(signals[1], 'unknown') || ':' || target_kind``) is the same definition.
"""

from __future__ import annotations

from collections.abc import Sequence

UNKNOWN_ALERT = "unknown"


def signature_of(signals: Sequence[str] | None, target_kind: str) -> str:
    """The signature of an incident with these alert names (in the order they joined it) on a ``target_kind``."""
    return f"{signals[0] if signals else UNKNOWN_ALERT}:{target_kind}"
