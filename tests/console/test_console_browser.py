"""The web console in a real headless browser (Debian's chromium through chromium-driver and Selenium) against
the whole application running live on Ray Serve, PostgreSQL and the test control plane.

One test, one application: sign in with a token, watch an incident made by a real AlertManager webhook appear in
the list without reloading, open its timeline (the alert's ``<script>`` annotation is text), see the approval
the policy asked for appear, refuse a decision without the CSRF token, let a viewer find no approve button and
get 403 for a direct POST, approve as an admin and see the workflow move on in the open page. Screenshots of
the main pages go to the test's directory, and to ``$KUBERNAUT_CONSOLE_SCREENSHOTS`` when set (docs/images).

And the README's quickstart: the shipped serve_config.yaml without a cluster, the sample from `kubernaut
send-alert --sample oom`, its approval rehearsed (execution.dry_run_approvals) and approved in the browser.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from kubernaut.execution.kube import Kube
from tests.conftest import gateway_tokens
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    SIM_STATE,
    admin_fixture,
    container,
    executor_role_fixture,
    pods,
    workload,
)
from tests.support.live_app import live_application
from tests.support.polling import eventually

# A browser is a server process of its own (tests/plugins/components.py): slow, whatever the fixtures say.
pytestmark = [pytest.mark.slow, pytest.mark.k8s]

ADMIN_TOKEN = "test-token-1"  # tests/conftest.py TEST_TOKENS: test-admin, role admin
VIEWER_TOKEN = "test-token-viewer"  # test-viewer, role viewer
SCRIPT = "<script>window.pwned = 1</script>"
T = TypeVar("T")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver, "chromium and chromium-driver are installed by scripts/test-prepare.d/chromium.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000", "--lang=en-US", f"--user-data-dir={tmp_path / 'chromium'}",
                     # The incident stays open in a background tab while the approval is decided in another:
                     # its polling must not be throttled there.
                     "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                     "--disable-backgrounding-occluded-windows"):
        options.add_argument(argument)
    # The console's only scripts are its own: collect the console (CSP violations would be logged there).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def wait(driver: WebDriver, what: str, until: Callable[[WebDriver], T], timeout: float = 60) -> T:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.3).until(until)
    except WebDriverException as exc:
        raise AssertionError(f"timed out waiting for {what}; page:\n{driver.page_source[:4000]}") from exc


def shoot(driver: WebDriver, tmp_path: Path, name: str) -> None:
    driver.save_screenshot(str(tmp_path / f"{name}.png"))
    target = os.environ.get("KUBERNAUT_CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / f"{name}.png", Path(target) / f"console-{name}.png")


def sign_in(driver: WebDriver, base: str, token: str) -> None:
    driver.get(f"{base}/")
    wait(driver, "the sign-in form", lambda d: d.find_elements(By.ID, "token"))
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    wait(driver, "the incident list", lambda d: d.find_elements(By.ID, "incident-table"))


def csrf_on(driver: WebDriver) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', driver.page_source)
    assert match, "no CSRF token on the page"
    return match[1]


def webhook(namespace: str, pod: str, starts_at: datetime) -> dict[str, Any]:
    labels = {"alertname": "KubePodCrashLooping", "namespace": namespace, "pod": pod, "container": "app",
              "severity": "warning", "job": "kube-state-metrics"}
    annotations = {"summary": "Pod is crash looping.",
                   "description": f"{SCRIPT} Pod {namespace}/{pod} (app) is waiting (reason: CrashLoopBackOff)."}
    alert = {"status": "firing", "labels": labels, "annotations": annotations,
             "startsAt": starts_at.isoformat().replace("+00:00", "Z"), "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus/graph", "fingerprint": f"{abs(hash((pod, starts_at))):016x}"}
    return {"version": "4", "groupKey": '{}:{alertname="KubePodCrashLooping"}', "truncatedAlerts": 0,
            "status": "firing", "receiver": "kubernaut", "groupLabels": {"alertname": "KubePodCrashLooping"},
            "commonLabels": labels, "commonAnnotations": annotations, "externalURL": "http://am", "alerts": [alert]}


async def test_the_console_in_a_browser(serve_app: Any, fresh_dsn: str, kube_testenv: Any, executor_role: Any,
                                        admin: Kube, kube_namespace: str, browser: WebDriver,
                                        tmp_path: Path) -> None:
    ns = kube_namespace
    body = workload("Deployment", "leaky", replicas=1, containers=[container("app", limits={"memory": "64Mi"})],
                    template_annotations={SIM_STATE: "OOMKilled"}, spec_extra={"strategy": {"type": "Recreate"}})
    await admin.create("Deployment", ns, body)
    async with live_application(
        serve_app, "ui", fresh_dsn, kube_testenv.executor_kubeconfig,
        gateway={"tokens": gateway_tokens()}, console={"refresh_s": 1},
        execution={"cooldown_s": 0},
        orchestration={"stabilization_s": 2, "verify_interval_s": 0.5, "verify_timeout_s": 30},
        effectiveness={"retry_initial_s": 0.5, "sweep_interval_s": 2},
        work={"poll_interval_s": 0.5, "lease_s": 10},
    ) as base:
        db = await asyncpg.connect(fresh_dsn)
        try:
            await _walk_through(browser, base, db, admin, ns, tmp_path)
        finally:
            await db.close()


async def _walk_through(driver: WebDriver, base: str, db: asyncpg.Connection, admin: Kube, ns: str,
                        tmp_path: Path) -> None:
    # / is the console: without a session, the sign-in form; a wrong token stays there with the reason.
    driver.get(f"{base}/")
    wait(driver, "the sign-in form", lambda d: d.find_elements(By.ID, "token"))
    driver.find_element(By.ID, "token").send_keys("not-a-token")
    driver.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    wait(driver, "the refusal", lambda d: "invalid or expired credentials" in d.page_source)
    shoot(driver, tmp_path, "signin")
    sign_in(driver, base, ADMIN_TOKEN)
    assert "token:test-admin" in driver.find_element(By.CSS_SELECTOR, ".principal").text

    # A real webhook while the list is open: the incident appears without a reload (htmx polling).
    async def oom_pod() -> str | None:
        for pod in await pods(admin, ns, "leaky"):
            for status in pod.get("status", {}).get("containerStatuses") or []:
                if (status.get("lastState", {}).get("terminated") or {}).get("reason") == "OOMKilled":
                    return str(pod["metadata"]["name"])
        return None

    pod = await eventually(oom_pod, timeout=60, what="an OOMKilled pod of leaky")
    driver.execute_script("window.kubernautMarker = 42")  # survives only while the page is not reloaded
    async with httpx.AsyncClient(timeout=15) as client:
        sent = await client.post(f"{base}/api/v1/alerts", json=webhook(ns, pod, datetime.now(timezone.utc)
                                                                       - timedelta(minutes=2)),
                                 headers={"Authorization": "Bearer test-token-ingest"})
    assert sent.status_code == 200, sent.text
    (incident_id,) = sent.json()["incident_ids"]
    link = f"{urlsplit(base).path}/console/incidents/{incident_id}"  # as the page writes it: under the prefix
    wait(driver, "the new incident in the open list", lambda d: d.find_elements(
        By.CSS_SELECTOR, f"a.incident-link[href='{link}']"))
    assert driver.execute_script("return window.kubernautMarker") == 42, "the list was reloaded, not updated"
    assert "leaky" in driver.find_element(By.ID, "incident-rows").text
    # Times are shown in the browser's zone, UTC on hover.
    stamp = driver.find_element(By.CSS_SELECTOR, "#incident-rows time")
    assert stamp.get_attribute("title").endswith(" UTC") and stamp.get_attribute("data-local") == "1"
    shoot(driver, tmp_path, "incidents")

    # The timeline: the alert's annotation is text, never markup; the approval the policy asks for shows up.
    driver.find_element(By.CSS_SELECTOR, f"a.incident-link[href='{link}']").click()
    wait(driver, "the incident page", lambda d: d.find_elements(By.ID, "incident-live"))
    annotations = driver.find_element(By.CSS_SELECTOR, "td.annotations").text
    assert SCRIPT in annotations, annotations
    assert driver.execute_script("return window.pwned") is None
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in driver.page_source
    review = wait(driver, "the pending approval on the open incident", lambda d: d.find_elements(
        By.CSS_SELECTOR, "a[id^='review-approval-']"), timeout=120)[0]
    approval_url = review.get_attribute("href")
    approval_id = int(approval_url.rsplit("/", 1)[1])
    for heading in ("Timeline", "Alerts", "Classification", "Analysis", "Workflow", "Actions", "Effectiveness",
                    "Notifications", "Audit"):
        assert driver.find_elements(By.XPATH, f"//h2[starts-with(normalize-space(.), '{heading}')]"), heading
    assert driver.find_elements(By.CSS_SELECTOR, "pre.diff .diff-add, pre.diff .diff-del"), "no dry-run diff"
    shoot(driver, tmp_path, "incident")

    review.click()
    wait(driver, "the approval page", lambda d: d.find_elements(By.ID, "approve-button"))
    assert driver.find_elements(By.CSS_SELECTOR, "pre.diff .diff-add"), "the approval shows no diff"
    assert "increase_memory_limits" in driver.page_source
    shoot(driver, tmp_path, "approval")
    admin_cookie = driver.get_cookie("kubernaut_session")
    assert admin_cookie and admin_cookie["httpOnly"] and admin_cookie["sameSite"] == "Strict"
    assert not admin_cookie["secure"]  # plain http on loopback

    async def approval_status() -> str:
        return str(await db.fetchval("SELECT status FROM approvals WHERE id = $1", approval_id))

    async with httpx.AsyncClient(timeout=15, follow_redirects=False) as client:
        # The admin's own session without the form's CSRF token: refused, nothing decided.
        refused = await client.post(f"{approval_url}/approve", data={"reason": "no token"},
                                    headers={"Cookie": f"kubernaut_session={admin_cookie['value']}"})
        assert refused.status_code == 403 and "CSRF" in refused.text
        assert await approval_status() == "pending"

        # A viewer: the same page has no approve button, and a direct POST (with its own valid CSRF) is 403.
        driver.delete_all_cookies()
        sign_in(driver, base, VIEWER_TOKEN)
        driver.get(approval_url)
        wait(driver, "the viewer's approval page", lambda d: d.find_elements(By.ID, "cannot-decide"))
        assert not driver.find_elements(By.ID, "approve-button") and not driver.find_elements(By.ID, "reject-form")
        viewer_cookie = driver.get_cookie("kubernaut_session")
        forbidden = await client.post(f"{approval_url}/approve", data={"reason": "me", "csrf": csrf_on(driver)},
                                      headers={"Cookie": f"kubernaut_session={viewer_cookie['value']}"})
        assert forbidden.status_code == 403, forbidden.text
        assert "token:test-viewer needs approve approvals.kubernaut.ai in ns/" in forbidden.text
        assert await approval_status() == "pending"
        refusal = await db.fetchval("SELECT actor FROM audit_events WHERE event = 'approval.refused' "
                                    "AND (detail->>'approval_id')::bigint = $1", approval_id)
        assert refusal == "token:test-viewer"  # audited by the REST route's own path

    # The admin approves in the browser; the open incident page shows the workflow moving on.
    driver.delete_all_cookies()
    sign_in(driver, base, ADMIN_TOKEN)
    driver.get(f"{base}/console/incidents/{incident_id}")
    wait(driver, "the incident page", lambda d: d.find_elements(By.ID, "incident-live"))
    driver.execute_script("window.kubernautMarker = 43")
    incident_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(approval_url)
    wait(driver, "the approval form", lambda d: d.find_elements(By.ID, "approve-button"))
    driver.find_element(By.ID, "approve-reason").send_keys("memory leak confirmed <b>bold</b>")
    driver.find_element(By.ID, "approve-button").click()
    wait(driver, "the decision", lambda d: "You approved" in d.find_element(By.CSS_SELECTOR, ".flash").text)
    assert await approval_status() in ("approved", "used")
    row = await db.fetchrow("SELECT decided_by, decision_reason FROM approvals WHERE id = $1", approval_id)
    assert row["decided_by"] == "token:test-admin" and row["decision_reason"] == "memory leak confirmed <b>bold</b>"
    driver.close()
    driver.switch_to.window(incident_tab)
    wait(driver, "the workflow executing after the approval (live, no reload)", lambda d: d.find_elements(
        By.CSS_SELECTOR, "tr.step[data-step='execute:0']"), timeout=120)
    assert driver.execute_script("return window.kubernautMarker") == 43, "the incident page was reloaded"
    assert "awaiting approval" not in driver.find_element(By.ID, "workflow-phase").text
    assert re.search(r"Approval #\d+: (approved|used) by token:test-admin", driver.find_element(
        By.ID, "h-workflow").find_element(By.XPATH, "..").text)
    shoot(driver, tmp_path, "incident-approved")

    # The other pages render for the admin.
    for page, marker in (("actions", "action-increase_memory_limits"), ("learning", "h-autonomy"),
                         ("system", None), ("approvals", "approval-rows")):
        driver.get(f"{base}/console/{page}")
        wait(driver, f"the {page} page", lambda d, m=marker: d.find_elements(By.ID, m) if m else
             d.find_elements(By.TAG_NAME, "h1"))
        shoot(driver, tmp_path, page)
        if page == "system":
            assert "gateway" in driver.page_source and "live" in driver.page_source
    violations = [e for e in driver.get_log("browser") if "Content Security Policy" in e.get("message", "")]
    assert not violations, violations


async def test_the_quickstart_rehearses_an_approval_in_the_console(serve_app: Any, fresh_dsn: str,
                                                                   browser: WebDriver, tmp_path: Path) -> None:
    """The README's quickstart as a new user meets it: the shipped serve_config.yaml (dry-run, approval rehearsal,
    no authentication on loopback) with no cluster, `kubernaut send-alert --sample oom`; the real policy asks for
    an approval, the console shows it as a dry-run rehearsal, approving it in the browser completes the workflow
    with the dry-run note, and nothing is executed live."""
    import yaml
    from ray import serve

    from kubernaut import cli
    from kubernaut.app import build_app
    from kubernaut.config import load_config

    (shipped,) = [a["args"] for a in yaml.safe_load(cli.shipped_config().read_text())["applications"]
                  if a["name"] == "kubernaut"]
    assert shipped["execution"]["mode"] == "dry-run" and shipped["execution"]["dry_run_approvals"] is True
    assert "tokens" not in shipped.get("gateway", {})  # the quickstart has no sign-in
    config = load_config({**shipped, "storage": {"dsn": fresh_dsn}, "console": {"refresh_s": 1},
                          "kubernetes": {"kubeconfig": str(tmp_path / "no-kubeconfig")},  # a laptop without a cluster
                          "work": {"poll_interval_s": 0.5, "lease_s": 10}})
    await asyncio.to_thread(serve.run, build_app(config), name="qs", route_prefix="/qs", blocking=False)
    base = f"{serve_app.base_url}/qs"
    db = await asyncpg.connect(fresh_dsn)
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            async def ready() -> bool:
                try:
                    return (await client.get(f"{base}/ready")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=180, what="the quickstart app ready")
            assert await asyncio.to_thread(cli.main, ["--url", base, "send-alert", "--sample", "oom"]) == 0
            (incident_id,) = [i["id"] for i in (await client.get(f"{base}/api/v1/incidents")).json()["items"]]

            # No sign-in: / is the incident list; the incident's page shows the rehearsal waiting.
            browser.get(f"{base}/")
            wait(browser, "the incident list", lambda d: d.find_elements(By.ID, "incident-table"))
            browser.get(f"{base}/console/incidents/{incident_id}")
            review = wait(browser, "the rehearsal approval on the incident", lambda d: d.find_elements(
                By.CSS_SELECTOR, "a[id^='review-approval-']"), timeout=120)[0]
            live = browser.find_element(By.ID, "incident-live").text
            assert "is waiting (dry-run rehearsal: approving changes nothing)" in live, live
            assert "(dry-run rehearsal: approving changes nothing)" in browser.find_element(
                By.CSS_SELECTOR, "ol.timeline").text
            approval_id = int(review.get_attribute("href").rsplit("/", 1)[1])
            # The real policy asked (an unlabelled namespace is production; the rules' confidence is 0.75).
            (listed,) = (await client.get(f"{base}/api/v1/approvals")).json()["items"]
            assert listed["id"] == approval_id and listed["rehearsal"] is True and listed["status"] == "pending"
            assert listed["action"] == "increase_memory_limits"
            assert listed["reason"].startswith("production needs confidence of at least 0.8"), listed["reason"]

            browser.get(f"{base}/console/approvals")
            wait(browser, "the approvals list", lambda d: d.find_elements(By.CSS_SELECTOR, f"#approval-rows a[href$="
                                                                          f"'/approvals/{approval_id}']"))
            assert "dry-run rehearsal" in browser.find_element(By.ID, "approval-rows").text
            review_url = f"{base}/console/approvals/{approval_id}"
            browser.get(review_url)
            wait(browser, "the approval form", lambda d: d.find_elements(By.ID, "approve-button"))
            assert "changes nothing in the cluster" in browser.find_element(By.ID, "rehearsal-note").text
            assert browser.find_elements(By.ID, "planned-calls"), "no cluster, no diff: the planned calls are shown"
            browser.find_element(By.ID, "approve-reason").send_keys("rehearsing the quickstart")
            browser.find_element(By.ID, "approve-button").click()
            wait(browser, "the decision", lambda d: "You approved the dry-run rehearsal" in d.find_element(
                By.CSS_SELECTOR, ".flash").text)
            shoot(browser, tmp_path, "approval-rehearsal")

            browser.get(f"{base}/console/incidents/{incident_id}")
            outcome = wait(browser, "the completed workflow's outcome", lambda d: d.find_elements(
                By.CSS_SELECTOR, "p.outcome[id^='workflow-outcome-']"), timeout=60)[0]
            assert outcome.text == ("Outcome: approved by anonymous:anonymous; execution mode is dry-run: nothing "
                                    "was changed"), outcome.text
        row = await db.fetchrow("SELECT w.phase, i.phase AS incident_phase FROM workflows w JOIN incidents i "
                                "ON i.id = w.incident_id WHERE i.id = $1", incident_id)
        assert (row["phase"], row["incident_phase"]) == ("completed", "dry_run_completed")
        assert await db.fetchval("SELECT status FROM approvals WHERE id = $1", approval_id) == "used"
        # Every executor call was a dry-run: not one live action row.
        actions = await db.fetch("SELECT action, dry_run, status FROM actions WHERE incident_id = $1", incident_id)
        assert actions and all(a["dry_run"] and a["status"] == "dry_run" for a in actions), actions
    finally:
        await db.close()
        await asyncio.to_thread(serve.delete, "qs")
