"""Version choice from discovery documents: the version whose resource list offers this resource (or
subresource) with this verb.

A served group version need not serve every kind (1.20 serves batch/v1 Jobs but CronJobs only in
batch/v1beta1), and a listed resource need not offer every verb (pods/log offers only get,
pods/eviction only create). The body of a subresource can belong to another group: pods/eviction
names its own group/version in the core list, which is policy/v1beta1 up to 1.21 although 1.21
already serves policy/v1 PodDisruptionBudgets; v1 Evictions start with 1.22.

Pure functions over the documents (``GET /api/v1``, ``GET /apis/<group>/<version>``), so that the
choice is tested over the documents of several Kubernetes minors (tests/data/discovery).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernaut.cluster.errors import NotFound
from kubernaut.cluster.kinds import Kind, Resource

Doc = dict[str, Any]
# (group, version) → that group version's resource list, or None when the server does not serve it.
Lookup = Callable[[str, str], "Doc | None"]


def group_version_path(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def entry(doc: Doc | None, name: str) -> Doc | None:
    """The resource list's entry for ``name`` (``pods`` or ``pods/eviction``)."""
    for res in (doc or {}).get("resources") or []:
        if res.get("name") == name:
            return res
    return None


def offers(doc: Doc | None, name: str, verb: str) -> bool:
    found = entry(doc, name)
    return found is not None and verb in (found.get("verbs") or [])


def choose(kind: str, spec: Kind, verb: str, lookup: Lookup, subresource: str | None = None) -> Resource:
    """The first of ``spec.versions`` whose resource list offers ``verb`` on the resource (or subresource)."""
    name = f"{spec.plural}/{subresource}" if subresource else spec.plural
    for version in spec.versions:
        if offers(lookup(spec.group, version), name, verb):
            return Resource(kind, spec.group, version, spec.plural, spec.namespaced)
    where = ", ".join(group_version_path(spec.group, v).removeprefix("/api/").removeprefix("/apis/")
                      for v in spec.versions)
    raise NotFound(404, "NotFound", f"the server offers {verb} on {name} in none of {where}")


def discover_kind(kind: str, verb: str, core: Doc, groups: Doc, lookup: Lookup) -> Resource | None:
    """A kind outside the registry (read-only diagnostics): the core list, then each group's preferred
    version, whichever lists the kind with the verb."""
    for res in core.get("resources") or []:
        if res.get("kind") == kind and "/" not in res.get("name", "") and verb in (res.get("verbs") or []):
            return Resource(kind, "", "v1", res["name"], bool(res.get("namespaced")))
    for group in groups.get("groups") or []:
        preferred = (group.get("preferredVersion") or {}).get("version")
        if not preferred:
            continue
        for res in (lookup(group["name"], preferred) or {}).get("resources") or []:
            if res.get("kind") == kind and "/" not in res.get("name", "") and verb in (res.get("verbs") or []):
                return Resource(kind, group["name"], preferred, res["name"], bool(res.get("namespaced")))
    return None


def eviction_version_from(core: Doc) -> str:
    """The Eviction apiVersion this server accepts on pods/eviction, read from the subresource's own
    entry in the core list (``{"name": "pods/eviction", "group": "policy", "version": ...}``)."""
    found = entry(core, "pods/eviction")
    if found is None or "create" not in (found.get("verbs") or []):
        raise NotFound(404, "NotFound",
                       "the server does not offer create on pods/eviction (evictions impossible)")
    group, version = found.get("group"), found.get("version")
    if group and version:
        return f"{group}/{version}"
    # An entry that names no group/version is from a server older than policy/v1 Evictions.
    return "policy/v1beta1"
