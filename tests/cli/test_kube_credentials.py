"""`kubernaut --kube`: the CLI authenticates as the kubeconfig's user, with the bearer token kubectl would send."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubernaut import cli
from kubernaut.cluster.credentials import NoBearerToken, kubeconfig_bearer


def kubeconfig(path: Path, user: dict, context: str = "dev") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}, {"name": "other", "user": {"token": "other-token"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}},
                     {"name": "ops", "context": {"cluster": "c", "user": "other"}}]}))
    return path


def test_the_token_of_the_current_or_named_context(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", {"token": "dev-token"})
    assert kubeconfig_bearer(path) == "dev-token"
    assert kubeconfig_bearer(path, "ops") == "other-token"
    (tmp_path / "token").write_text("file-token\n")
    assert kubeconfig_bearer(kubeconfig(tmp_path / "c2", {"tokenFile": str(tmp_path / "token")})) == "file-token"


def test_an_exec_plugin_token(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.sh"
    plugin.write_text('#!/bin/sh\necho \'{"apiVersion": "client.authentication.k8s.io/v1", '
                      '"kind": "ExecCredential", "status": {"token": "exec-token"}}\'\n')
    plugin.chmod(0o755)
    path = kubeconfig(tmp_path / "config", {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                     "command": str(plugin), "interactiveMode": "Never"}})
    assert kubeconfig_bearer(path) == "exec-token"


def test_without_a_token_it_says_why_and_sends_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "crt").write_text("x")
    (tmp_path / "key").write_text("x")
    path = kubeconfig(tmp_path / "config", {"client-certificate": str(tmp_path / "crt"),
                                            "client-key": str(tmp_path / "key")})
    with pytest.raises(NoBearerToken, match="client certificates"):
        kubeconfig_bearer(path)
    with pytest.raises(NoBearerToken, match="unusable"):
        kubeconfig_bearer(tmp_path / "missing")
    # The CLI stops before any request (the URL is unreachable: a request would say so instead).
    assert cli.main(["--url", "http://127.0.0.1:9", "--kubeconfig", str(path), "incidents"]) == 2
    assert "client certificates" in capsys.readouterr().err
