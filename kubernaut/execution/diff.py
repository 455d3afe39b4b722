"""Readable before/after diffs of Kubernetes objects, for approvers and the action record.

Only what a human decides on is shown: spec and metadata as YAML. managedFields, status and the
bookkeeping the server changes on every write (resourceVersion, generation, timestamps) are
stripped, or every diff would be noise. Secrets (env values, secret-looking args, Secret data,
matching annotations) are redacted before the YAML is written (``kubernaut.cluster.redaction``).
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

import yaml

from kubernaut.cluster.redaction import Redactor, redactor

Obj = dict[str, Any]

_VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
# Truncated rather than refused: a huge diff (hundreds of evictions) must still be recordable.
MAX_DIFF_CHARS = 64_000


def strip(obj: Obj | None) -> Obj | None:
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in _VOLATILE_METADATA:
            meta.pop(key, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            # kubectl's last-applied copy repeats the whole object; it hides the real change.
            annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
            if not annotations:
                meta.pop("annotations")
    return out


def to_yaml(obj: Obj | None) -> str:
    if obj is None:
        return ""
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=False, width=1000)


def label(obj: Obj | None, fallback: str) -> str:
    if not obj:
        return fallback
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind', '?')}/{where}{meta.get('name', '?')}"


def object_diff(before: Obj | None, after: Obj | None, name: str | None = None,
                redact: Redactor | None = None) -> str:
    """Unified diff of one object; `before=None` is a creation, `after=None` a deletion. Without a
    configured redactor the default patterns apply: a diff is never written unredacted."""
    title = name or label(before or after, "object")
    hide = redact or redactor()
    old = to_yaml(hide.obj(strip(before))).splitlines(keepends=True)
    new = to_yaml(hide.obj(strip(after))).splitlines(keepends=True)
    lines = list(difflib.unified_diff(
        old, new,
        fromfile=f"a/{title}" if before is not None else "/dev/null",
        tofile=f"b/{title}" if after is not None else "/dev/null",
    ))
    if not lines:
        return f"--- a/{title}\n+++ b/{title}\n(no change)\n"
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def join(diffs: list[str]) -> str:
    text = "".join(diffs)
    if len(text) > MAX_DIFF_CHARS:
        text = text[:MAX_DIFF_CHARS] + f"\n... diff truncated at {MAX_DIFF_CHARS} characters\n"
    return text
