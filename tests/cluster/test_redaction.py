"""Redaction (kubernaut.cluster.redaction): what is hidden, what stays readable, and that the diffs and
the configuration use it. Records, bundles and notifications on real components: tests/execution,
tests/notifications and tests/system."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from kubernaut.cluster.redaction import REDACTED, Redactor, redactor
from kubernaut.config.settings import KubernautConfig, RedactionConfig
from kubernaut.execution.diff import object_diff


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "api", "namespace": "shop", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration":
                '{"spec":{"containers":[{"env":[{"value":"hunter2"}]}]}}',
            "vault.example.com/agent-token": "s.abcdef", "prometheus.io/scrape": "true"}},
        "spec": {
            "volumes": [{"name": "creds", "secret": {"secretName": "db-creds"}}],
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}],
            "containers": [{
                "name": "api", "image": "shop/api:1.2",
                "command": ["/bin/api", "--db-password=hunter2", "--token", "tok-123", "--port", "8080"],
                "args": ["--api-key=AKIAXYZ", "--verbose", "mode=fast", "client_secret=shh"],
                "env": [{"name": "DATABASE_URL", "value": "postgres://app:pg-pass@db:5432/shop"},
                        {"name": "LOG_LEVEL", "value": "debug"},
                        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "token"}}}],
            }],
        },
    }


SECRETS = ("hunter2", "tok-123", "AKIAXYZ", "shh", "pg-pass", "s.abcdef", "debug")


def test_pod_spec_loses_every_secret_and_keeps_every_name() -> None:
    original = pod()
    out = redactor().obj(original)
    text = json.dumps(out)
    for secret in SECRETS:
        assert secret not in text, secret
    assert original["spec"]["containers"][0]["env"][0]["value"].startswith("postgres://")  # a copy, not in place
    c = out["spec"]["containers"][0]
    assert [e["name"] for e in c["env"]] == ["DATABASE_URL", "LOG_LEVEL", "API_TOKEN"]
    assert c["env"][0]["value"] == c["env"][1]["value"] == REDACTED
    assert c["env"][2]["valueFrom"] == {"secretKeyRef": {"name": "db-creds", "key": "token"}}  # a reference
    assert c["command"] == ["/bin/api", f"--db-password={REDACTED}", "--token", REDACTED, "--port", "8080"]
    assert c["args"] == [f"--api-key={REDACTED}", "--verbose", "mode=fast", f"client_secret={REDACTED}"]
    notes = out["metadata"]["annotations"]
    assert notes["kubectl.kubernetes.io/last-applied-configuration"] == REDACTED
    assert notes["vault.example.com/agent-token"] == REDACTED and notes["prometheus.io/scrape"] == "true"
    # What a diagnosis needs stays: which Secret is mounted, tolerations, images.
    assert out["spec"]["volumes"] == original["spec"]["volumes"]
    assert out["spec"]["tolerations"] == original["spec"]["tolerations"] and c["image"] == "shop/api:1.2"


def test_secret_data_is_redacted_keys_kept() -> None:
    out = redactor().obj({"kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
                          "data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "x"}})
    assert out["data"] == {"password": REDACTED} and out["stringData"] == {"token": REDACTED}


def test_text_patterns() -> None:
    r = redactor()
    line = ("starting --password=hunter2 --token tok-123 api_key=AKIAXYZ user=bob from postgres://app:pg-pass@db/x "
            "Authorization: Bearer eyJhbGciOi.payload")
    out = r.text(line)
    for secret in ("hunter2", "tok-123", "AKIAXYZ", "pg-pass", "eyJhbGciOi"):
        assert secret not in out, out
    assert "user=bob" in out and "postgres://app:" in out and "@db/x" in out
    # Diff text stays readable: taints, selectors and references are no secrets.
    yaml_text = "- key: dedicated\n  value: db\n  secretName: db-creds\n  password: hunter2\n"
    assert r.text(yaml_text) == f"- key: dedicated\n  value: db\n  secretName: db-creds\n  password: {REDACTED}\n"


def test_diff_of_a_deletion_shows_no_secret() -> None:
    diff = object_diff(pod(), None, "Pod/shop/api")
    assert "DATABASE_URL" in diff and "--db-password=" in diff
    for secret in SECRETS:
        assert secret not in diff, secret


def test_patterns_are_configurable() -> None:
    config = RedactionConfig(secret_words=[*RedactionConfig().secret_words, "license"],
                             annotation_patterns=["example.com/*"], text_patterns=[r"AKIA[0-9A-Z]{4,}"])
    r = Redactor(config)
    assert r.text("--license-key=L-1") == f"--license-key={REDACTED}"
    assert r.text("found AKIAABCD in a log") == f"found {REDACTED} in a log"
    out = r.obj({"metadata": {"annotations": {"example.com/x": "1", "vault.example.com/agent-token": "s.x"}}})
    # The annotation list replaces the defaults; the key word "token" still catches the value as a name.
    assert out["metadata"]["annotations"]["example.com/x"] == REDACTED
    # Through the application config, as serve_config.yaml sets it.
    app = KubernautConfig(redaction={"secret_words": ["license"]})
    assert redactor(app.redaction).text("--license=abc --password=x") == f"--license={REDACTED} --password=x"


def test_bad_pattern_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match="not a regular expression"):
        KubernautConfig(redaction={"text_patterns": ["(unclosed"]})
    with pytest.raises(ValidationError, match="redaction"):
        KubernautConfig(redaction={"unknown_field": 1})
