"""Kubernetes discovery documents of several minors (tests/data/discovery) and the API versions the cluster facade
is expected to choose from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "discovery"
MINORS = ("1.20", "1.21", "1.22", "1.23", "1.25", "1.29")


def discovery(minor: str) -> dict[str, dict[str, Any]]:
    return json.loads((DATA / f"v{minor}.json").read_text())


EXPECTED: dict[tuple[str, str, str | None], dict[str, str | None]] = {
    ("CronJob", "get", None): {"1.20": "batch/v1beta1", "1.21": "batch/v1", "1.22": "batch/v1", "1.23": "batch/v1",
                               "1.25": "batch/v1", "1.29": "batch/v1"},
    ("HorizontalPodAutoscaler", "patch", None): {
        "1.20": "autoscaling/v2beta2", "1.21": "autoscaling/v2beta2", "1.22": "autoscaling/v2beta2",
        "1.23": "autoscaling/v2", "1.25": "autoscaling/v2", "1.29": "autoscaling/v2"},
    ("PodDisruptionBudget", "list", None): {"1.20": "policy/v1beta1", "1.21": "policy/v1", "1.22": "policy/v1",
                                            "1.23": "policy/v1", "1.25": "policy/v1", "1.29": "policy/v1"},
    ("Ingress", "get", None): dict.fromkeys(MINORS, "networking.k8s.io/v1"),
    ("NetworkPolicy", "create", None): dict.fromkeys(MINORS, "networking.k8s.io/v1"),
    ("Deployment", "patch", "scale"): dict.fromkeys(MINORS, "apps/v1"),
    ("StatefulSet", "get", "scale"): dict.fromkeys(MINORS, "apps/v1"),
    ("Pod", "create", "eviction"): dict.fromkeys(MINORS, "v1"),
    ("Pod", "get", "log"): dict.fromkeys(MINORS, "v1"),
    ("Namespace", "delete", None): dict.fromkeys(MINORS, "v1"),
    # What the entries do not offer: a choice that ignored the verb or the subresource would answer these.
    ("Pod", "patch", "eviction"): dict.fromkeys(MINORS),
    ("Pod", "delete", "log"): dict.fromkeys(MINORS),
    ("Job", "patch", "scale"): dict.fromkeys(MINORS),
    ("CronJob", "get", "scale"): dict.fromkeys(MINORS),
    ("Namespace", "deletecollection", None): dict.fromkeys(MINORS),
    ("Deployment", "delete", "scale"): dict.fromkeys(MINORS),
}
