"""NetworkPolicy actions: isolating a pod, and removing a policy that blocks legitimate traffic."""

from __future__ import annotations

QUARANTINE_LABEL = "kubernaut.ai/quarantine"














