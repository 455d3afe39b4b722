"""NetworkPolicies: quarantine one pod, remove a blocking policy (and lift a quarantine)."""

from __future__ import annotations

QUARANTINED_POD = "kubernaut.ai/quarantined-pod"








