"""The shipped ingress (kubernaut/ingress.py): Serve's HAProxy ingress by default, its stats listeners on loopback,
its admin socket private, and a configuration the guard cannot make safe is never started.

The configurations hardened here are the ones Ray itself generates (ray.serve._private.haproxy), and the hardened
ones are checked by the HAProxy binary Ray would run. On a running app: tests/system/test_serve_run.py."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubernaut import ingress
from tests.deploy.manifests import CLUSTER, REPO_ROOT, load_docs, pod_templates, ray_container, rayservice

SWITCHES = ("RAY_SERVE_THROUGHPUT_OPTIMIZED", "RAY_SERVE_ENABLE_HA_PROXY")


def ray_config(tmp_path: Path, host: str) -> str:
    """The configuration Ray 2.60's HAProxy manager writes for ``http_options.host``."""
    from ray.serve._private.haproxy import HAProxyApi, HAProxyConfig
    from ray.serve.config import HTTPOptions

    cfg = HAProxyConfig(http_options=HTTPOptions(host=host, port=8123), socket_path=str(tmp_path / "admin.sock"),
                        server_state_base=str(tmp_path), server_state_file=str(tmp_path / "server-state"),
                        metrics_socket_path=str(tmp_path / "metrics.sock"))
    api = HAProxyApi(cfg, config_file_path=str(tmp_path / "haproxy.cfg"))
    api._generate_config_file_internal()
    return (tmp_path / "haproxy.cfg").read_text()


def binds(config: str) -> dict[str, list[str]]:
    section, found = "", {}
    for line in config.splitlines():
        if line and not line[0].isspace():
            section = " ".join(line.split()[:2])
        if line.split()[:1] == ["bind"]:
            found.setdefault(section, []).append(line.split()[1])
    return found


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_rays_config_has_its_stats_listeners_moved_to_loopback_and_a_private_admin_socket(tmp_path: Path,
                                                                                           host: str) -> None:
    raw = ray_config(tmp_path, host)
    # What Ray writes: the reason for the guard (if Ray stops doing this, the guard's docstring must change).
    assert binds(raw)["listen stats"] == ["*:8404"] and binds(raw)["frontend prometheus"] == [":9101"]
    assert "mode 666 level admin" in raw
    hardened = ingress.harden(raw)
    found = binds(hardened)
    assert found["listen stats"] == ["127.0.0.1:8404"] and found["frontend prometheus"] == ["127.0.0.1:9101"]
    # The ingress itself keeps Serve's http_options.host (clusters need it on every interface, with tokens).
    assert found["frontend http_frontend"] == binds(raw)["frontend http_frontend"]
    assert found["frontend http_frontend"] == [f"{'*' if host == '0.0.0.0' else host}:8123"]
    (socket_line,) = [line for line in hardened.splitlines() if line.split()[:2] == ["stats", "socket"]]
    assert " mode 600 " in socket_line and "666" not in socket_line
    # Nothing else changed.
    assert len(hardened.splitlines()) == len(raw.splitlines())


def test_the_hardened_config_is_valid_for_the_haproxy_ray_runs(tmp_path: Path) -> None:
    from ray.serve._private.haproxy import get_haproxy_binary

    config = tmp_path / "hardened.cfg"
    config.write_text(ingress.harden(ray_config(tmp_path, "127.0.0.1")))
    check = subprocess.run([get_haproxy_binary(), "-c", "-f", str(config)], capture_output=True, text=True,
                           timeout=30, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("line", ["  bind unix@/tmp/x.sock", "  bind *:8404,*:8405", "  bind", "  bind *:stats",
                                  "  stats socket /x mode"])
def test_what_cannot_be_made_loopback_is_refused(line: str) -> None:
    with pytest.raises(ingress.UnsafeConfig):
        ingress.harden(f"global\n  maxconn 10\nlisten stats\n{line}\n")


def test_a_stats_socket_without_a_mode_gets_600() -> None:
    assert "stats socket /x/admin.sock mode 600 level admin" in ingress.harden(
        "global\n    stats socket /x/admin.sock level admin\n")


def test_the_fast_ingress_is_the_default_and_what_the_caller_set_wins(tmp_path: Path) -> None:
    env = ingress.serve_env({}, directory=tmp_path)
    assert {k: env[k] for k in SWITCHES} == ingress.FAST_INGRESS
    # Throughput-optimized replicas still write each log line when it happens (no 1,000-record buffer).
    assert env["RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE"] == "1"
    guard = Path(env["RAY_SERVE_HAPROXY_BINARY_PATH"])
    assert guard.parent == tmp_path and os.access(guard, os.X_OK)
    for key in ("RAY_SERVE_HAPROXY_SOCKET_PATH", "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC",
                "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH", "RAY_SERVE_HAPROXY_SERVER_STATE_FILE"):
        assert Path(env[key]).parent == tmp_path, key
    # Turned off by the caller: nothing of HAProxy is set.
    assert ingress.serve_env(dict(ingress.DEFAULT_PROXY), directory=tmp_path) == {}
    # The caller's own values stay, their HAProxy binary runs behind the guard.
    env = ingress.serve_env({"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_HAPROXY_SOCKET_PATH": "/x/admin.sock",
                             "RAY_SERVE_HAPROXY_BINARY_PATH": "/opt/haproxy"}, directory=tmp_path)
    assert "RAY_SERVE_ENABLE_HA_PROXY" not in env and "RAY_SERVE_HAPROXY_SOCKET_PATH" not in env
    assert env[ingress.REAL_BINARY_ENV] == "/opt/haproxy"
    assert env["RAY_SERVE_HAPROXY_BINARY_PATH"] == str(tmp_path / ingress.GUARD_NAME)


def test_the_private_directory_is_created_0700_and_refused_when_others_can_reach_it(tmp_path: Path) -> None:
    uid = os.getuid()
    made = ingress.runtime_dir(base=str(tmp_path))
    assert stat.S_IMODE(made.stat().st_mode) == 0o700 and made.stat().st_uid == uid
    assert ingress.runtime_dir(base=str(tmp_path)) == made  # again: the same, accepted
    made.chmod(0o755)
    with pytest.raises(ingress.UnsafeConfig, match="0700"):
        ingress.runtime_dir(base=str(tmp_path))
    made.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    made.symlink_to(elsewhere)  # a link someone else could have planted
    with pytest.raises(ingress.UnsafeConfig):
        ingress.runtime_dir(base=str(tmp_path))
    with pytest.raises(ingress.UnsafeConfig):
        ingress.runtime_dir(uid=uid + 1, base=str(tmp_path / "elsewhere"))  # not this user's


def _fake_haproxy(tmp_path: Path) -> Path:
    """Stands in for HAProxy: records its arguments and the configuration it was given."""
    fake = tmp_path / "fake-haproxy"
    fake.write_text(f"#!{sys.executable}\nimport sys, pathlib\nargs = sys.argv[1:]\n"
                    f"pathlib.Path({str(tmp_path / 'ran')!r}).write_text('\\n'.join(args))\n"
                    f"pathlib.Path({str(tmp_path / 'ran.cfg')!r}).write_text("
                    "pathlib.Path(args[args.index('-f') + 1]).read_text())\n")
    fake.chmod(0o700)
    return fake


def test_the_guard_runs_haproxy_on_the_hardened_config_and_refuses_an_unsafe_one(tmp_path: Path) -> None:
    env = {**os.environ, **ingress.serve_env({"RAY_SERVE_HAPROXY_BINARY_PATH": str(_fake_haproxy(tmp_path))},
                                             directory=tmp_path)}
    guard = env["RAY_SERVE_HAPROXY_BINARY_PATH"]
    config = tmp_path / "node" / "haproxy.cfg"
    config.parent.mkdir()
    config.write_text(ray_config(tmp_path, "127.0.0.1"))
    run = subprocess.run([guard, "-db", "-f", str(config), "-dR", "-sf", "123"], env=env, capture_output=True,
                         text=True, timeout=30, check=False)
    assert run.returncode == 0, run.stderr
    hardened = config.with_name("haproxy.cfg" + ingress.HARDENED_SUFFIX)
    assert (tmp_path / "ran").read_text().split("\n") == ["-db", "-f", str(hardened), "-dR", "-sf", "123"]
    assert (tmp_path / "ran.cfg").read_text() == ingress.harden(config.read_text())
    assert stat.S_IMODE(hardened.stat().st_mode) == 0o600
    # Fail closed: a bind the guard cannot move to loopback means no HAProxy at all.
    (tmp_path / "ran").unlink()
    config.write_text("global\nlisten stats\n  bind unix@/tmp/stats.sock\n")
    run = subprocess.run([guard, "-db", "-f", str(config)], env=env, capture_output=True, text=True, timeout=30,
                         check=False)
    assert run.returncode == 1 and "not starting HAProxy" in run.stderr
    assert not (tmp_path / "ran").exists()


IMAGE_DIR = Path("/home/ray/.kubernaut-haproxy")  # deploy/Dockerfile: python -m kubernaut.ingress --dir …


def _image_env(tmp_path: Path) -> dict[str, str]:
    """What `python -m kubernaut.ingress --dir IMAGE_DIR` sets, with the directory named as in the image."""
    return {k: v.replace(str(tmp_path), str(IMAGE_DIR)) for k, v in ingress.serve_env({}, tmp_path).items()}


@pytest.mark.parametrize("variant", ["cpu", "llm"])
def test_every_ray_node_of_the_rayservice_runs_the_shipped_ingress(tmp_path: Path, variant: str) -> None:
    expected = _image_env(tmp_path)
    groups = list(pod_templates(rayservice(variant)))
    assert groups[0][0] == "head" and len(groups) > 1
    for group, template in groups:
        env = {e["name"]: e.get("value") for e in ray_container(template).get("env", [])}
        assert {k: env.get(k) for k in expected} == expected, group


def test_the_image_prepares_the_directory_the_manifests_name() -> None:
    lines = (REPO_ROOT / "deploy" / "Dockerfile").read_text().splitlines()
    user = lines.index("USER 1000")
    (prepare,) = [i for i, line in enumerate(lines) if "kubernaut.ingress" in line]
    # As the user the pods run as (runAsUser 1000): the directory must be theirs, 0700.
    assert prepare > user and lines[prepare].split() == ["RUN", "python", "-m", "kubernaut.ingress", "--dir",
                                                         str(IMAGE_DIR)]
    (dev,) = load_docs(REPO_ROOT / "cluster" / "dev" / "raycluster.yaml")
    container = dev["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert env["RAY_SERVE_HAPROXY_BINARY_PATH"] == str(IMAGE_DIR / ingress.GUARD_NAME)
    assert all(v.startswith(str(IMAGE_DIR)) for k, v in env.items() if k.startswith("RAY_SERVE_HAPROXY_"))


@pytest.mark.parametrize("name", ["aws.yaml", "onprem.yaml"])
def test_every_ray_up_node_starts_ray_with_the_shipped_ingress(name: str) -> None:
    config = yaml.safe_load((CLUSTER / name).read_text())
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [c for c in config[key] if "ray start" in c]
        prepare = f'ingress="$(python -m kubernaut.ingress --dir {IMAGE_DIR})" && eval "$ingress" &&'
        # Prepared before `ray start`, and no start when it cannot be prepared (&&).
        assert prepare in start and start.index(prepare) < start.index("ray start"), start


def test_the_dev_cluster_and_the_run_commands_use_the_shipped_ingress() -> None:
    script = (REPO_ROOT / "cluster" / "dev" / "ray-dev-cluster.sh").read_text()
    up = script[script.index("cmd_up() {"):]
    assert up.index("-m kubernaut.ingress") < up.index("start_node head"), "prepared before the first node"
    assert "exec .venv/bin/python -m kubernaut.cli run" in (REPO_ROOT / "scripts" / "run.sh").read_text()


def test_benchmarks_measure_the_shipped_configuration() -> None:
    """bench/ sets nothing of Serve's own: the harness starts `kubernaut run`; only bench/ingest.py's comparison
    row turns the fast ingress off (kubernaut.ingress.DEFAULT_PROXY)."""
    for path in sorted((REPO_ROOT / "bench").glob("*.py")):
        tree = ast.parse(path.read_text())
        docs = {ast.get_docstring(node, clean=False) for node in ast.walk(tree)
                if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                   and isinstance(node.value, str) and node.value not in docs]
        # The harness's one use: dropping the caller's RAY_SERVE_* so that `kubernaut run` decides.
        assert not [v for v in strings if "RAY_SERVE_" in v and v != "RAY_SERVE_"], path.name
    harness = (REPO_ROOT / "bench" / "harness.py").read_text()
    assert '[PYTHON, "-m", "kubernaut.cli", "run", str(config_file)]' in harness
    assert "DEFAULT_PROXY" in (REPO_ROOT / "bench" / "ingest.py").read_text()


def test_the_guard_finds_rays_haproxy_itself_and_never_runs_itself(tmp_path: Path) -> None:
    """As Ray runs it: RAY_SERVE_HAPROXY_BINARY_PATH names the guard, no other binary given; the guard runs the
    HAProxy Ray would have run (here in check mode, -c), on the hardened configuration."""
    env = {k: v for k, v in os.environ.items() if k != ingress.REAL_BINARY_ENV}
    env.update(ingress.serve_env({}, directory=tmp_path))
    config = tmp_path / "haproxy.cfg"
    config.write_text(ray_config(tmp_path, "127.0.0.1"))
    check = subprocess.run([env["RAY_SERVE_HAPROXY_BINARY_PATH"], "-c", "-f", str(config)], env=env,
                           capture_output=True, text=True, timeout=30, check=False)
    assert check.returncode == 0 and "Configuration file is valid" in check.stdout + check.stderr, check.stderr
    assert (tmp_path / ("haproxy.cfg" + ingress.HARDENED_SUFFIX)).exists()
    # A "real" binary that is the guard again is refused, not looped through.
    env[ingress.REAL_BINARY_ENV] = env["RAY_SERVE_HAPROXY_BINARY_PATH"]
    loop = subprocess.run([env["RAY_SERVE_HAPROXY_BINARY_PATH"], "-c", "-f", str(config)], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert loop.returncode == 1 and "is this guard" in loop.stderr


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_haproxy_started_by_the_guard_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    """Ray stops HAProxy only on a graceful Serve shutdown; when the HAProxy manager's worker dies (Ray's processes
    stopped together, a replica killed) the HAProxy it started must not stay behind holding the ingress port."""
    import signal
    import time

    fake = tmp_path / "fake-haproxy"
    fake.write_text(f"#!{sys.executable}\nimport os, pathlib, time\n"
                    f"pathlib.Path({str(tmp_path / 'haproxy.pid')!r}).write_text(str(os.getpid()))\ntime.sleep(120)\n")
    fake.chmod(0o700)
    env = {**os.environ, **ingress.serve_env({"RAY_SERVE_HAPROXY_BINARY_PATH": str(fake)}, directory=tmp_path)}
    config = tmp_path / "node" / "haproxy.cfg"
    config.parent.mkdir()
    config.write_text(ray_config(tmp_path, "127.0.0.1"))
    # Stands in for Ray's HAProxy manager actor: starts the guard as Ray does, then is killed.
    manager = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                                "subprocess.Popen(sys.argv[1:]); time.sleep(120)",
                                env["RAY_SERVE_HAPROXY_BINARY_PATH"], "-db", "-f", str(config)],
                               env=env, start_new_session=True)
    pid_file = tmp_path / "haproxy.pid"
    haproxy = 0
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and manager.poll() is None, "the guard did not start HAProxy"
            time.sleep(0.05)
        haproxy = int(pid_file.read_text())
        assert not _dead(haproxy)
        manager.kill()
        manager.wait(10)
        deadline = time.monotonic() + 10
        while not _dead(haproxy) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _dead(haproxy), "HAProxy outlived the process that started it"
    finally:
        if manager.poll() is None:
            manager.kill()
        if haproxy and not _dead(haproxy):
            os.kill(haproxy, signal.SIGKILL)
