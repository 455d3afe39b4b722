"""Redaction: secrets in Kubernetes objects and text never reach a record, a diff, a bundle or a message.

One module, one set of configurable patterns (``redaction`` in the configuration), used wherever
objects or their text leave the cluster: the executor's action records (before/after states,
diffs, diagnostics bundles) and the notifications sent to humans.

What is redacted (the names stay, so a human still sees *what* was there):

* the ``value`` of every container env var (``valueFrom`` only names a reference and is kept);
* secret-looking container ``command``/``args``: ``--password=x``, ``--token x``, ``api_key=x``;
* the values of a Secret's ``data`` and ``stringData``;
* annotation values whose key matches ``redaction.annotation_patterns`` (kubectl's last-applied
  copy repeats the whole object, env values included, so it is among the defaults);
* string values under secret-looking keys anywhere (``password: x`` in a ConfigMap-like dict);
* in free text (logs, event messages, diffs, notification bodies): the same argument patterns,
  ``Authorization: Bearer x`` and the password of ``scheme://user:password@host``.
"""

from __future__ import annotations

import copy
import re
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from kubernaut.config.settings import RedactionConfig

REDACTED = "<redacted>"
# A Kubernetes field named ...Name or ...Ref (secretName, secretKeyRef, tokenSecretRef) refers to another
# object: it holds no secret itself, and hiding it would hide what a diagnosis needs.
_REFERENCE = re.compile(r"[a-z0-9](Name|Ref|Refs)$")

class Redactor:
    def __init__(self, config: RedactionConfig | None = None) -> None:
        self.config = config or RedactionConfig()
        words = "|".join(f"(?:{w})" for w in self.config.secret_words) or r"(?!)"
        self._secret_name = re.compile(words, re.IGNORECASE)
        value = r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)"
        # key=value / key: value / --flag=value, where the name looks secret ...
        self._assignment = re.compile(r"(?<![A-Za-z0-9_.\-])(?P<name>[A-Za-z0-9_.\-]+)(?P<sep>\s*[=:]\s*)" + value)
        # ... and --flag value (a flag followed by a word that is not another flag).
        self._flag = re.compile(r"(?<![A-Za-z0-9_.\-])(?P<name>--?[A-Za-z0-9_][A-Za-z0-9_.\-]*)(?P<sep>\s+)(?!-)"
                                + value)
        self._bearer = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*")
        self._url_password = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]+:)[^\s@/]+(?P<at>@)")
        self._extra = [re.compile(p) for p in self.config.text_patterns]

    # -- names -----------------------------------------------------------------------------------

    def secret_name(self, name: str) -> bool:
        name = name.lstrip("-")
        return bool(name) and not _REFERENCE.search(name) and bool(self._secret_name.search(name))

    def secret_annotation(self, key: str) -> bool:
        lowered = key.lower()
        return any(fnmatchcase(lowered, p.lower()) for p in self.config.annotation_patterns)

    # -- text ------------------------------------------------------------------------------------

    def text(self, value: str) -> str:
        """Free text (logs, messages, diffs): secret-looking assignments, bearer tokens, URL passwords."""
        if not value:
            return value

        def assignment(match: re.Match[str]) -> str:
            name, sep = match.group("name"), match.group("sep")
            if not self.secret_name(name) or match.group("value") == REDACTED:
                return match.group(0)
            return f"{name}{sep}{REDACTED}"

        out = self._bearer.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
        out = self._assignment.sub(assignment, out)
        out = self._flag.sub(assignment, out)
        out = self._url_password.sub(lambda m: f"{m.group('head')}{REDACTED}{m.group('at')}", out)
        for pattern in self._extra:
            out = pattern.sub(REDACTED, out)
        return out

    def args(self, values: list[Any]) -> list[Any]:
        """A container's command/args: ``--token=x`` and ``--token x`` (two items) both lose the value."""
        out: list[Any] = []
        hide_next = False
        for item in values:
            if not isinstance(item, str):
                out.append(item)
                hide_next = False
                continue
            if hide_next:
                out.append(REDACTED)
                hide_next = False
                continue
            if item.startswith("-") and "=" not in item and self.secret_name(item):
                hide_next = True
                out.append(item)
                continue
            out.append(self.text(item))
        return out

    # -- objects ---------------------------------------------------------------------------------

    def obj(self, value: Any) -> Any:
        """A redacted deep copy of any JSON value: Kubernetes objects, action records, bundles."""
        return self._walk(copy.deepcopy(value), None)

    def _walk(self, value: Any, key: str | None) -> Any:
        if isinstance(value, dict):
            if value.get("kind") == "Secret":
                for field in ("data", "stringData"):
                    if isinstance(value.get(field), dict):
                        value[field] = {k: REDACTED for k in value[field]}
            for k, v in list(value.items()):
                if k == "env" and isinstance(v, list):
                    value[k] = [self._env(item) for item in v]
                elif k in ("args", "command") and isinstance(v, list):
                    value[k] = self.args(v)
                elif k == "annotations" and isinstance(v, dict):
                    value[k] = {ak: (REDACTED if self.secret_annotation(ak) and isinstance(av, str) else
                                     self._walk(av, ak)) for ak, av in v.items()}
                elif isinstance(v, str) and self.secret_name(k):
                    value[k] = REDACTED
                else:
                    value[k] = self._walk(v, k)
            return value
        if isinstance(value, list):
            return [self._walk(item, key) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def _env(self, item: Any) -> Any:
        if isinstance(item, dict) and "value" in item:
            item = {**item, "value": REDACTED}
        return self._walk(item, None) if isinstance(item, dict) else item


@lru_cache(maxsize=16)
def _cached(config_json: str) -> Redactor:
    return Redactor(RedactionConfig.model_validate_json(config_json))


def redactor(config: RedactionConfig | None = None) -> Redactor:
    """The redactor for a configuration (compiled once per distinct configuration)."""
    return _cached((config or RedactionConfig()).model_dump_json())
