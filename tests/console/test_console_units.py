"""The web console without components (fast tier): escaping, the Content-Security-Policy, the session cookie,
CSRF, sign-in with the gateway's real authentication chain (static tokens), redirects, the override form.
The pages on the running app, in a real browser: tests/console/test_console_browser.py."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kubernaut.config import load_config
from kubernaut.gateway import services as gateway_services
from kubernaut.gateway.console import ROUTERS, overrides, render, web
from kubernaut.gateway.console.session import SESSION_COOKIE, Session, SessionCodec, key_from_secret
from kubernaut.gateway.services import GatewayServices
from kubernaut.identity.chain import build_chain
from kubernaut.identity.static_tokens import hash_token

SECRET = "s" * 40
TOKENS = {"tok-viewer": ("alice", ["viewer"], []), "tok-approver": ("bob", ["viewer", "approver"], ["team-a"])}


@pytest.fixture
def client() -> Iterator[TestClient]:
    """The console's routes in a plain FastAPI app, over the gateway's real chain of static tokens. No database
    and no deployments: a page that reached them would fail, so a test that passes never got that far."""
    config = load_config({"console": {"session_secret": SECRET}, "gateway": {"tokens": [
        {"name": name, "roles": roles, "approve_namespaces": ns, "hash": hash_token(token)}
        for token, (name, roles, ns) in TOKENS.items()]}})
    previous = gateway_services._installed
    gateway_services.install(GatewayServices(config=config, db=None, auth=build_chain(config.gateway, "0.0.0.0"),  # type: ignore[arg-type]
                                             deployments=None, ingest=None, analyze_limiter=None))  # type: ignore[arg-type]
    web._console = None
    app = FastAPI()
    for router in ROUTERS:
        app.include_router(router)
    try:
        with TestClient(app, follow_redirects=False) as test_client:
            yield test_client
    finally:
        gateway_services._installed = previous
        web._console = None


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF field in the form"
    return match[1]


def sign_in(client: TestClient, token: str) -> Any:
    form = client.get("/console/signin?next=%2Fconsole%2Fapprovals")
    return client.post("/console/signin", data={"csrf": csrf_of(form.text), "token": token,
                                                "next": "/console/approvals"})


def test_an_annotation_with_a_script_renders_as_text() -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    now = datetime.now(timezone.utc)
    incident = {"id": 7, "target": {"kind": "Deployment", "name": "web", "namespace": "shop"}, "status": "open",
                "phase": "new", "severity": "warning", "environment": "staging", "priority": "P2",
                "signals": [evil], "firing_alerts": 1, "occurrence_count": 1, "first_seen": now, "last_seen": now,
                "classification": {"why": evil}, "alerts": [{"received_at": now, "alertname": "KubePodCrashLooping",
                                                             "status": "firing", "severity": "warning",
                                                             "annotations": {"description": evil}, "labels": {}}],
                "analyses": [], "analysis": {"engine": "llm", "action": "restart_pod", "target": {},
                                             "confidence": 0.9, "root_cause": evil, "reasoning": [evil],
                                             "findings": [{"kind": "crash", "summary": evil}],
                                             "alternatives": [], "parameters": {}},
                "workflows": [], "actions": [{"action": "restart_pod", "dry_run": True, "status": "dry_run",
                                              "target": {}, "plan": [], "diff": f"+ {evil}"}],
                "assessments": [], "notifications": [], "audit": [],
                "page": {"alerts_total": 1, "audit_total": 0}}
    html = render.environment().get_template("_incident_live.html").render(
        base="", incident=incident, approvals=[], timeline=[], digest="d", refresh_ms=3000)
    assert "<script>" not in html and "<img" not in html
    assert html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 5  # alert name, annotation, cause, …
    # The diff keeps its text (and its + sign) as text too.
    assert '<span class="diff-add">+ &lt;script&gt;' in html


def test_templates_carry_no_inline_script_style_or_handlers() -> None:
    """The CSP allows scripts and styles only from /console/static: an inline one would be blocked (and would
    mean the policy had to be loosened)."""
    templates = resources.files("kubernaut.gateway.console").joinpath("templates")
    for entry in templates.iterdir():
        text = entry.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), entry.name
        assert not re.search(r"\sstyle=|<style", text), entry.name
        assert not re.search(r"\son[a-z]+=", text), entry.name
        assert "hx-on" not in text and "javascript:" not in text, entry.name


def test_sign_in_page_headers_and_cookie(client: TestClient) -> None:
    page = client.get("/console/signin")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == render.CSP
    assert "script-src 'self';" in render.CSP and "unsafe-inline" not in render.CSP and "unsafe-eval" not in render.CSP
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http (localhost): a Secure cookie would never come back


def test_over_tls_the_cookie_is_secure(client: TestClient) -> None:
    client.base_url = client.base_url.copy_with(scheme="https")
    assert "Secure" in client.get("/console/signin").headers["set-cookie"]


def test_sign_in_needs_the_forms_csrf_token_and_a_valid_token(client: TestClient) -> None:
    form = client.get("/console/signin")
    refused = client.post("/console/signin", data={"token": "tok-viewer"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = client.post("/console/signin", data={"token": "tok-viewer", "csrf": "x" * 43})
    assert wrong.status_code == 403
    bad = client.post("/console/signin", data={"token": "not-a-token", "csrf": csrf_of(form.text)})
    assert bad.status_code == 401 and "invalid or expired credentials" in bad.text
    good = sign_in(client, "tok-viewer")
    assert good.status_code == 303 and good.headers["location"] == "/console/approvals"
    sealed = client.cookies[SESSION_COOKIE]
    assert "tok-viewer" not in sealed  # encrypted, not only signed
    # Only characters a cookie carries unquoted (a quoted value is not unquoted by every client).
    assert re.fullmatch(r"[A-Za-z0-9_-]+", sealed), sealed
    session = SessionCodec(key_from_secret(SECRET), 3600).open(sealed, Session)
    assert session is not None and session.credential == "tok-viewer" and session.method == "token"
    assert session.csrf != csrf_of(form.text)  # signing in starts a new session (no fixation)


def test_next_never_leaves_the_console(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/console/../api", "/\\evil.example"):
        assert web.safe_next(target) == "/console/incidents"
    assert web.safe_next("//evil.example") == "/console/incidents"
    form = client.get("/console/signin")
    response = client.post("/console/signin", data={"csrf": csrf_of(form.text), "token": "tok-viewer",
                                                    "next": "https://evil.example/"})
    assert response.headers["location"] == "/console/incidents"


def test_pages_without_a_session_go_to_sign_in(client: TestClient) -> None:
    assert client.get("/").headers["location"] == "/console/incidents"
    response = client.get("/console/incidents?status=open")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/signin?next=%2Fconsole%2Fincidents%3Fstatus%3Dopen"
    # A polled fragment gets HX-Redirect (htmx follows it) instead of a sign-in page inside the list.
    polled = client.get("/console/incidents/rows", headers={"HX-Request": "true"})
    assert polled.status_code == 204 and polled.headers["hx-redirect"].startswith("/console/signin")


def test_a_decision_without_csrf_is_refused_before_anything_else(client: TestClient) -> None:
    """The form's POST without the session's CSRF token: 403 before the approval is even read (there is no
    database here: reading it would have failed with a 500)."""
    assert sign_in(client, "tok-approver").status_code == 303
    for data in ({"reason": "lgtm"}, {"reason": "lgtm", "csrf": "forged" * 8}):
        refused = client.post("/console/approvals/5/approve", data=data)
        assert refused.status_code == 403 and "CSRF token is missing or wrong" in refused.text
    # A request from another site carries no session at all: it is sent to sign in, nothing decided.
    client.cookies.clear()
    assert client.post("/console/approvals/5/approve", data={"reason": "x"}).status_code == 303


def test_sign_out_needs_csrf_and_ends_the_session(client: TestClient) -> None:
    sign_in(client, "tok-viewer")
    assert client.post("/console/signout", data={}).status_code == 403
    csrf = SessionCodec(key_from_secret(SECRET), 3600).open(client.cookies[SESSION_COOKIE], Session).csrf
    out = client.post("/console/signout", data={"csrf": csrf})
    assert out.status_code == 303 and SESSION_COOKIE not in out.cookies


def test_a_tampered_foreign_or_old_cookie_is_no_session() -> None:
    codec = SessionCodec(key_from_secret(SECRET), ttl_s=60)
    sealed = codec.seal(Session(credential="tok", method="token"))
    assert codec.open(sealed, Session).credential == "tok"
    assert codec.open(sealed[:-4] + "AAAA", Session) is None
    assert SessionCodec(key_from_secret("t" * 40), 60).open(sealed, Session) is None
    old = SessionCodec(key_from_secret(SECRET), ttl_s=1)
    stale = old.seal(Session())
    time.sleep(2.1)
    assert old.open(stale, Session) is None


def test_the_override_form_follows_the_actions_schema() -> None:
    schema = {"properties": {"replicas": {"type": "integer", "title": "Replicas"},
                             "mode": {"enum": ["a", "b"]}, "force": {"type": "boolean", "default": False},
                             "image": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    proposed = {"replicas": 3, "mode": "a", "image": None}
    fields = {f.name: f for f in overrides.fields(schema, proposed)}
    assert {n: f.kind for n, f in fields.items()} == {"replicas": "integer", "mode": "enum", "force": "boolean",
                                                      "image": "string"}
    assert fields["replicas"].value == "3" and fields["mode"].choices == ("a", "b")
    unchanged = {"override.replicas": "3", "override.mode": "a", "override.force": "false", "override.image": ""}
    assert overrides.override_from_form(unchanged, schema, proposed) is None
    assert overrides.override_from_form({**unchanged, "override.replicas": "5", "csrf": "x"}, schema,
                                        proposed) == {"replicas": 5}
    with pytest.raises(overrides.BadOverride, match="replicas"):
        overrides.override_from_form({**unchanged, "override.replicas": "five"}, schema, proposed)
    with pytest.raises(overrides.BadOverride, match="mode"):
        overrides.override_from_form({**unchanged, "override.mode": "c"}, schema, proposed)
    with pytest.raises(overrides.BadOverride, match="namespace"):
        overrides.override_from_form({**unchanged, "override.namespace": "kube-system"}, schema, proposed)


def test_diff_and_time_filters() -> None:
    lines = list(render.diff_lines("--- a\n+++ b\n@@ -1 +1 @@\n-replicas: 1\n+replicas: 3\n kind: X"))
    assert [c for c, _ in lines] == ["diff-file", "diff-file", "diff-hunk", "diff-del", "diff-add", "diff-ctx"]
    moment = datetime(2026, 12, 5, 18, 0, tzinfo=timezone.utc)
    assert render.utc_iso(moment) == "2026-12-05T18:00:00Z" and render.utc_text(moment) == "2026-12-05 18:00:00 UTC"
    assert render.time_left(moment + timedelta(minutes=12, seconds=5), now=moment) == "12m 5s"
    assert render.time_left(moment - timedelta(seconds=1), now=moment) == "expired"


def _page(template: str, **values: Any) -> str:
    from kubernaut.identity.chain import ANONYMOUS

    common = {"base": "/ui", "principal": ANONYMOUS, "csrf": "c" * 43, "version": "0", "cluster": "test",
              "dry_run": False, "refresh_ms": 3000, "signed_in": True, "flash": None}
    return render.environment().get_template(template).render(**{**common, **values})


def test_the_catalog_page_shows_every_action_with_risk_inverse_and_rbac() -> None:
    from kubernaut.execution.catalog.registry import CATALOG, catalog_document

    html = _page("actions.html", nav="actions", actions=catalog_document(),
                 rbac={name: [rule._asdict() for rule in spec.rbac] for name, spec in CATALOG.items()})
    for name, spec in CATALOG.items():
        assert f'id="action-{name}"' in html
        for rule in spec.rbac:
            assert f"{','.join(rule.verbs)} {rule.resource}" in html
    assert "scale_deployment" in html and "risk-" in html


def test_the_approval_page_offers_the_override_form_only_to_who_may_decide() -> None:
    from kubernaut.execution.catalog.registry import CATALOG
    from kubernaut.storage.approvals import ApprovalRecord

    now = datetime.now(timezone.utc)
    approval = ApprovalRecord(
        id=3, workflow_id=1, incident_id=2, status="pending", action="scale_deployment",
        target={"kind": "Deployment", "name": "shop", "namespace": "team-a"}, parameters={"replicas": 3},
        reason="production needs confidence of at least 0.8", dry_run_diff="-  replicas: 2\n+  replicas: 3",
        requested_at=now, expires_at=now + timedelta(minutes=15), decided_by=None, decided_at=None,
        decision_reason=None, override_parameters=None, used_at=None)
    spec = CATALOG["scale_deployment"].document()
    fields = overrides.fields(spec["parameters_schema"], approval.parameters)
    allowed = _page("approval.html", nav="approvals", approval=approval, spec=spec, may_decide=True, fields=fields)
    assert 'id="approve-button"' in allowed and 'name="override.replicas"' in allowed and 'value="3"' in allowed
    assert allowed.count('name="csrf" value="' + "c" * 43) == 3  # approve, reject, sign out
    assert '<span class="diff-add">+  replicas: 3</span>' in allowed and "14m" in allowed
    denied = _page("approval.html", nav="approvals", approval=approval, spec=spec, may_decide=False, fields=[])
    assert "approve-button" not in denied and "reject-form" not in denied
    assert "needs approve approvals.kubernaut.ai in ns/team-a" in denied


def test_learning_and_system_pages_render() -> None:
    stats = {"signature": "abc" * 10, "alertname": "KubePodCrashLooping", "target_kind": "Deployment",
             "action": "restart_pod", "executions": 9, "effective": 8, "ineffective": 1, "success_rate": 0.89,
             "lower_bound": 0.565, "last_at": datetime.now(timezone.utc)}
    html = _page("learning.html", nav="learning", min_cases=5, min_lower_bound=0.8,
                 patterns={"action_stats": [stats], "recurring": [{"summary": "<i>x</i>"}], "oscillation": [],
                           "ineffective_chain": [], "harmful": [], "incident_embeddings": 4},
                 effectiveness={"executed_actions": 9, "simulated_actions": 2, "mean_score": 0.8,
                                "per_action": [{"action": "restart_pod", "n": 9}], "note": "n"})
    assert "0.565" in html and "needs approval" in html and "&lt;i&gt;x&lt;/i&gt;" in html
    html = _page("system.html", nav="system", execution_mode="live", executor={"effective_dry_run": False},
                 llm={"engine": "rules", "degraded": False}, deployments=[
                     {"name": "gateway", "status": "HEALTHY", "running": 2, "replicas": {"RUNNING": 2},
                      "message": ""}], serve_error=None, ray_dashboard_url="http://127.0.0.1:8265",
                 storage_kind="embedded", auth_methods=["token"], anonymous=False, notification_urls=1)
    assert "gateway" in html and "http://127.0.0.1:8265" in html and "running: 2" in html


def test_without_authentication_on_loopback_there_is_no_sign_in() -> None:
    """The quickstart: no authentication configured, loopback only, every local caller the anonymous admin, as
    for the API. The sign-in page sends the browser on; a page gets a session (CSRF) without signing in."""
    config = load_config({"console": {"session_secret": SECRET}})
    previous = gateway_services._installed
    gateway_services.install(GatewayServices(config=config, db=None, auth=build_chain(config.gateway, "127.0.0.1"),  # type: ignore[arg-type]
                                             deployments=None, ingest=None, analyze_limiter=None))  # type: ignore[arg-type]
    web._console = None
    app = FastAPI()
    for router in ROUTERS:
        app.include_router(router)
    try:
        with TestClient(app, follow_redirects=False) as client:
            assert client.get("/").headers["location"] == "/console/incidents"
            moved = client.get("/console/signin?next=%2Fconsole%2Fapprovals")
            assert moved.status_code == 303 and moved.headers["location"] == "/console/approvals"
            # A form from another page (no session cookie, so not its CSRF token) decides nothing.
            refused = client.post("/console/approvals/1/approve", data={"csrf": "x" * 43})
            assert refused.status_code == 403 and "CSRF" in refused.text
    finally:
        gateway_services._installed = previous
        web._console = None


def test_the_incident_list_shows_and_filters_by_cluster() -> None:
    from kubernaut.gateway.console.pages import IncidentFilters

    filters = IncidentFilters(None, None, "shop", None, None, 2, cluster="spoke-b")
    assert filters.query() == "namespace=shop&cluster=spoke-b&page=2"
    now = datetime.now(timezone.utc)
    incident = {"id": 3, "cluster": "spoke-b", "target": {"kind": "Deployment", "name": "web", "namespace": "shop"},
                "status": "open", "phase": "new", "severity": "warning", "environment": "staging", "priority": "P2",
                "signals": ["KubePodCrashLooping"], "last_seen": now, "analysis": None}
    html = render.environment().get_template("_incident_table.html").render(
        base="", incidents=[incident], filters=filters, digest="d", refresh_ms=3000)
    assert "<th scope=\"col\">Cluster</th>" in html and "<td>spoke-b</td>" in html
    assert "cluster=spoke-b" in html  # the live refresh keeps the filter
