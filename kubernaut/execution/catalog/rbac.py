"""Permissions: what one action needs, and the executor's ClusterRole as the union over the catalog."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple


class RbacRule(NamedTuple):
    """One permission an action needs; the union over the catalog becomes the executor's ClusterRole."""

    api_group: str
    resource: str
    verbs: tuple[str, ...]


# What the executor's safety pipeline itself reads, whatever the action: the scope check reads the
# target's namespace for the opt-in label (kubernaut.ai/managed). The Alert Processor runs under the same
# account: its optional Warning-event source (processing.events) lists and watches core/v1 Events.
PIPELINE_RBAC: tuple[RbacRule, ...] = (RbacRule("", "namespaces", ("get",)), RbacRule("", "events", ("list", "watch")))


def cluster_role_rules(declared: Iterable[RbacRule]) -> list[dict[str, list[str]]]:
    """Least-privilege ClusterRole rules for the executor: the union of what the actions and the
    safety pipeline need.

    Verbs are merged per (apiGroup, resource), then resources sharing a verb set are grouped into
    one rule, so the generated manifest is short, sorted and stable across runs (diffable in git).
    """
    verbs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in (*PIPELINE_RBAC, *declared):
        verbs[(rule.api_group, rule.resource)].update(rule.verbs)
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (group, resource), verb_set in verbs.items():
        grouped[(group, tuple(sorted(verb_set)))].append(resource)
    rules = [
        {"apiGroups": [group], "resources": sorted(resources_), "verbs": list(verb_list)}
        for (group, verb_list), resources_ in grouped.items()
    ]
    return sorted(rules, key=lambda r: (r["apiGroups"], r["resources"], r["verbs"]))
