"""The README's run command on a fresh data directory: `serve run serve_config.yaml` (via scripts/run.sh)
brings the system up, and a captured AlertManager payload becomes an incident with an analysis and a
dry-run action within seconds."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.sinks import free_port

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.postgres]  # `serve run` starts both

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = REPO / "tests" / "data" / "alertmanager" / "captured_am0.25_firing_prometheus_rule.json"


def wait_for(predicate, timeout: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"serve run exited with {process.returncode} before {what}")
        try:
            last = predicate()
            if last:
                return last
        except (httpx.HTTPError, AssertionError, KeyError, TypeError) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def test_serve_run_brings_up_the_loop(tmp_path: Path) -> None:
    from kubernaut.storage.embedded import stop_embedded_server

    config = yaml.safe_load((REPO / "serve_config.yaml").read_text())
    port = free_port()
    config["http_options"] = {"host": "127.0.0.1", "port": port}
    data_dir = tmp_path / "data"
    config["applications"][0]["args"].setdefault("storage", {})["data_dir"] = str(data_dir)
    config_file = tmp_path / "serve_config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    # RAY_ADDRESS=local: a Ray of its own, as on a fresh laptop. Without an address `serve run` joins the cluster
    # named in /tmp/ray/ray_current_cluster (the last `ray start` on the machine), even a dead one.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_ADDRESS="local", RAY_AUTH_MODE="disabled", KUBECONFIG=str(tmp_path / "no-kubeconfig"))
    # The shipped ingress as the user gets it: nothing of it set here, only HAProxy's stats and Prometheus ports
    # moved off their defaults (8404, 9101) so that another HAProxy on this machine cannot make the test fail.
    for key in [k for k in env if k.startswith("RAY_SERVE_")]:
        del env[key]
    stats_port, metrics_port = free_port(), free_port()
    env.update(RAY_SERVE_HAPROXY_STATS_PORT=str(stats_port), RAY_SERVE_HAPROXY_METRICS_PORT=str(metrics_port))
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(["bash", str(REPO / "scripts" / "run.sh"), str(config_file)], cwd=tmp_path,
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _run_loop(base, process)
        _check_mcp(base)
        _check_haproxy_is_private(port, stats_port, metrics_port)
        _check_no_dashboard_modules(process.pid)
    except AssertionError as error:
        # What serve run printed is the only account of why it did not come up (CI shows no files).
        log.flush()
        tail = (tmp_path / "serve.log").read_text(errors="replace")[-6000:]
        raise AssertionError(f"{error}\n--- serve run output (tail) ---\n{tail}") from None
    finally:
        haproxies = [pid for pid, cmd in _descendants(process.pid).items() if "haproxy" in cmd]
        # Ctrl-C in a terminal: SIGINT to the whole foreground process group (driver, GCS and raylet together).
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()
        stop_embedded_server(data_dir)
        left = _outlived(haproxies, 20)
    # HAProxy is started by a Ray worker in a process group of its own: the app's stop must still end it.
    assert haproxies and not left, f"HAProxy of the app still running after its stop: {left} (of {haproxies})"


def _descendants(root: int) -> dict[int, str]:
    """Every process below ``root``: pid → command line."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat:
            children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    out, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            pass
    return out


def _outlived(pids: list[int], timeout: float) -> list[int]:
    """Which of ``pids`` still run after ``timeout`` s; those are killed (this test started them)."""
    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except OSError:
            return False

    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [pid for pid in pids if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


def _run_loop(base: str, process: subprocess.Popen) -> None:
    wait_for(lambda: httpx.get(f"{base}/ready", timeout=2).status_code == 200, 180, "serve run ready", process)
    response = httpx.post(f"{base}/api/v1/alerts", json=json.loads(PAYLOAD.read_text()), timeout=10)
    assert response.status_code == 200, response.text
    (incident_id,) = response.json()["incident_ids"]

    def incident_done():
        view = httpx.get(f"{base}/api/v1/incidents", timeout=5).json()["items"]
        item = next(i for i in view if i["id"] == incident_id)
        return item if item["phase"] in ("dry_run_completed", "human_review") else None

    started = time.monotonic()
    item = wait_for(incident_done, 30, "incident with analysis and dry-run action")
    assert time.monotonic() - started < 15, "the loop should complete within seconds"
    # Without cluster evidence the crashloop rule's restart is recommended to a human, not proposed.
    assert item["analysis"]["action"] == "notify_only"
    detail = httpx.get(f"{base}/api/v1/incidents/{incident_id}", timeout=5).json()
    assert detail["analysis"]["alternatives"][0]["action"] == "restart_pod"
    assert detail["actions"] and all(a["status"] == "dry_run" for a in detail["actions"])


def _check_mcp(base: str) -> None:
    """/mcp answers on the shipped run (its SDK task group runs in the gateway app's lifespan); without
    authentication only loopback Host names (kubernaut/gateway/mcp/endpoint.py)."""
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    answer = httpx.post(f"{base}/mcp", json=initialize, headers=headers, timeout=10)
    assert answer.status_code == 200 and answer.json()["result"]["serverInfo"]["name"] == "kubernaut", answer.text
    rebound = httpx.post(f"{base}/mcp", json=initialize, headers={**headers, "Host": "evil.example"}, timeout=10)
    assert rebound.status_code != 200 and "serverInfo" not in rebound.text


def _check_no_dashboard_modules(root: int) -> None:
    """`kubernaut run` starts Ray without the dashboard's module processes and the autoscaler monitor
    (kubernaut/local_ray.py): the dashboard head runs alone, with its usage-stats module."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue  # gone
        if not stat:
            continue
        children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    lines, todo = [], [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    assert [c for c in lines if "ray/dashboard/dashboard.py" in c and "--modules-to-load=UsageStatsHead" in c], lines
    assert not [c for c in lines if c.startswith("ray-dashboard-")], "dashboard module processes are running"
    # Nor Ray's autoscaler monitor (nodes of a cluster; a laptop has one): ~48 MB PSS of the idle app.
    assert not [c for c in lines if "autoscaler/_private/monitor.py" in c], "the autoscaler monitor is running"


def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address_hex, port_hex = local.split(":")
            raw = bytes.fromhex(address_hex)
            # /proc prints each 32-bit word of the address in host (little-endian) order.
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, width // 2, 4))
            address = ipaddress.ip_address(words)
            found.add((str(address), int(port_hex, 16)))
    return found


def _check_haproxy_is_private(port: int, stats_port: int, metrics_port: int) -> None:
    """The fast ingress is on by default, and HAProxy's stats page, Prometheus frontend and admin socket are not
    reachable from other machines or other users (kubernaut/ingress.py)."""
    from kubernaut.ingress import HARDENED_SUFFIX, runtime_dir

    private = runtime_dir()
    ours = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if "-f" in args and args[args.index("-f") + 1].startswith(str(private)):
            try:
                listening = _listening(int(entry.name))
            except OSError:
                continue
            if ("127.0.0.1", port) in listening:
                ours[int(entry.name)] = (args, listening)
    assert ours, f"no HAProxy serving 127.0.0.1:{port} from {private}: the fast ingress is not the default"
    for pid, (args, listening) in ours.items():
        config = Path(args[args.index("-f") + 1])
        assert config.name.endswith(HARDENED_SUFFIX), f"HAProxy {pid} runs an unhardened configuration {config}"
        off_loopback = {(a, p) for a, p in listening if not ipaddress.ip_address(a).is_loopback}
        assert not off_loopback, f"HAProxy {pid} listens off loopback: {sorted(off_loopback)}"
        assert {("127.0.0.1", stats_port), ("127.0.0.1", metrics_port)} <= listening, sorted(listening)
        (socket_line,) = [line.split() for line in config.read_text().splitlines()
                          if line.split()[:2] == ["stats", "socket"]]
        admin = Path(socket_line[2])
        assert admin.is_socket() and admin.stat().st_mode & 0o077 == 0, oct(admin.stat().st_mode)
        assert private in admin.parents and private.stat().st_mode & 0o077 == 0
    # The stats page answers on loopback only (nothing else listens on that port: checked above).
    assert httpx.get(f"http://127.0.0.1:{stats_port}/stats", timeout=5).status_code == 200
