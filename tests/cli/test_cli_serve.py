"""`kubernaut` against the running Serve app (the session's): an alert sent with the CLI shows in its incident
table and timeline, approvals as JSON for scripts, the kubeconfig user's token accepted through a TokenReview,
and a refusal printed with the API's reason."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubernaut.cli import main
from tests.plugins.kube_testenv import wait_until

ROLES_FILE = Path(__file__).resolve().parents[2] / "deploy" / "12-kubernaut-roles.yaml"


async def kubernaut(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_cli_reads_the_running_app(serve_app: Any, app_kubeconfig: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "220")  # rich's width when stdout is not a terminal: one table row per line
    url = ["--url", serve_app.base_url]
    namespace = f"cli-{uuid.uuid4().hex[:6]}"
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"version": "4", "status": "firing", "receiver": "kubernaut", "alerts": [{
        "labels": {"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": namespace,
                   "pod": "web-7d4b9c8f6-abcde"},
        "annotations": {"summary": "[bold]crash[/bold] looping"},
        "startsAt": "2026-11-26T06:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}]}))
    code, out, _ = await kubernaut(capsys, *url, "--token", "test-token-ingest", "send-alert", str(alert))
    assert code == 0, out
    (incident_id,) = json.loads(out)["incident_ids"]

    viewer = [*url, "--token", "test-token-viewer"]
    code, out, _ = await kubernaut(capsys, *viewer, "incidents", "--namespace", namespace)
    assert code == 0 and "Incidents" in out and "status" in out
    (row,) = [line for line in out.splitlines() if f" {incident_id} " in line]
    assert "open" in row and "KubePodCrashLooping" in row and namespace in out

    code, out, _ = await kubernaut(capsys, *viewer, "incidents", str(incident_id))
    assert code == 0 and f"Incident #{incident_id}" in out
    assert "KubePodCrashLooping firing" in out and "[bold]crash[/bold] looping" in out  # as written
    code, out, _ = await kubernaut(capsys, *viewer, "incidents", str(incident_id), "--json")
    assert code == 0 and json.loads(out)["id"] == incident_id

    code, out, err = await kubernaut(capsys, *url, "--token", "test-token-ingest", "incidents")
    assert code == 1 and "403" in err and "token:test-ingest needs list incidents.kubernaut.ai" in err

    code, out, _ = await kubernaut(capsys, *viewer, "approvals", "--json")
    assert code == 0 and isinstance(json.loads(out)["items"], list)
    code, out, _ = await kubernaut(capsys, *viewer, "approvals")
    assert code == 0 and "Approvals" in out

    if serve_app.config.gateway.kubernetes.enabled:  # a kubeconfig user, through a TokenReview
        with kube_viewer(request.getfixturevalue("kube_api_client")) as token:
            kubeconfig = with_token(Path(app_kubeconfig), tmp_path / "kubeconfig", token)
            code, out, err = await kubernaut(capsys, *url, "--kubeconfig", str(kubeconfig), "incidents", "--json",
                                             "--namespace", namespace)
        assert code == 0, err
        assert [i["id"] for i in json.loads(out)["items"]] == [incident_id]


def with_token(kubeconfig: Path, copy: Path, token: str) -> Path:
    """A copy of ``kubeconfig`` whose users authenticate with ``token``."""
    document = yaml.safe_load(kubeconfig.read_text())
    for user in document["users"]:
        user["user"] = {"token": token}
    copy.write_text(yaml.safe_dump(document))
    return copy


@contextmanager
def kube_viewer(api_client: Any) -> Iterator[str]:
    """A ServiceAccount bound cluster-wide to a copy of deploy/'s kubernaut-viewer; yields its token."""
    from kubernetes import client

    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    name = f"cli-{uuid.uuid4().hex[:6]}"
    (role,) = [d for d in yaml.safe_load_all(ROLES_FILE.read_text())
               if d and d["kind"] == "ClusterRole" and d["metadata"]["name"] == "kubernaut-viewer"]
    role["metadata"]["name"] = f"{name}-viewer"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        rbac.create_cluster_role(role)
        core.create_namespaced_service_account(name, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)))
        rbac.create_cluster_role_binding({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"{name}-viewer"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": name}]})
        review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{name}:{name}", resource_attributes=client.V1ResourceAttributes(
                verb="list", resource="incidents", group="kubernaut.ai")))
        authz = client.AuthorizationV1Api(api_client)
        wait_until(lambda: authz.create_subject_access_review(review).status.allowed, timeout=30,
                   what="the viewer's ClusterRoleBinding")
        request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(expiration_seconds=600))
        yield core.create_namespaced_service_account_token(name, name, request).status.token
    finally:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(f"{name}-viewer")
        core.delete_namespace(name)
