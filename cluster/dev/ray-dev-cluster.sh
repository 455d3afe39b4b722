#!/usr/bin/env bash
# A multi-node Ray cluster on one machine, for development: a head that runs no replicas (like the
# KubeRay head, num-cpus 0) and N workers, each a separate raylet with its own resources, ports and
# metrics endpoint — so scheduling across nodes, node loss and per-node metrics behave as in production.
#
#   cluster/dev/ray-dev-cluster.sh up        start head + workers (idempotent), print the address
#   cluster/dev/ray-dev-cluster.sh deploy    serve deploy serve_config.yaml (through the dashboard)
#   cluster/dev/ray-dev-cluster.sh run       serve run serve_config.yaml on the cluster (foreground)
#   cluster/dev/ray-dev-cluster.sh status    nodes and their resources
#   cluster/dev/ray-dev-cluster.sh kill-worker N   stop worker N only (simulate a node loss)
#   cluster/dev/ray-dev-cluster.sh down      stop this cluster's processes (and only them)
#
# Environment (defaults in brackets):
#   RAY_DEV_DIR            state: pids, logs, Ray temp dir (short!) [/tmp/kubernaut-ray-dev]
#   RAY_DEV_WORKERS        worker nodes                              [2]
#   RAY_DEV_WORKER_CPUS    CPUs per worker                           [1]
#   RAY_DEV_GCS_PORT       head GCS port                             [6390]
#   RAY_DEV_DASHBOARD_PORT dashboard port (serve deploy, UI)         [8266]
#   RAY_DEV_METRICS_PORT   head metrics port; worker i uses +i      [8090]
#   RAY_DEV_PORT_BASE      first of the per-node internal ports      [23000]
#   RAY_DEV_SERVE_CONFIG   config for deploy/run                     [serve_config.yaml]
#   RAY_BIN                the `ray` executable                      [.venv/bin/ray, else ray]
#   RAY_AUTH_MODE          Ray token auth; `disabled` here unless set (local, loopback only)
#   RAY_SERVE_ENABLE_HA_PROXY, RAY_SERVE_THROUGHPUT_OPTIMIZED  the shipped fast ingress unless set [1]
#
# `down` signals the process group of each `ray start --block` it started (recorded pids), never
# `ray stop`, which would stop every Ray cluster of this user on the machine.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

DEV_DIR="${RAY_DEV_DIR:-/tmp/kubernaut-ray-dev}"
WORKERS="${RAY_DEV_WORKERS:-2}"
WORKER_CPUS="${RAY_DEV_WORKER_CPUS:-1}"
GCS_PORT="${RAY_DEV_GCS_PORT:-6390}"
DASHBOARD_PORT="${RAY_DEV_DASHBOARD_PORT:-8266}"
METRICS_PORT="${RAY_DEV_METRICS_PORT:-8090}"
PORT_BASE="${RAY_DEV_PORT_BASE:-23000}"
SERVE_CONFIG="${RAY_DEV_SERVE_CONFIG:-$REPO_ROOT/serve_config.yaml}"
if [[ -n "${RAY_BIN:-}" ]]; then :; elif [[ -x "$REPO_ROOT/.venv/bin/ray" ]]; then RAY_BIN="$REPO_ROOT/.venv/bin/ray"; else RAY_BIN=ray; fi
RAY_BIN_DIR="$(dirname "$(command -v "$RAY_BIN")")"
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
export RAY_USAGE_STATS_ENABLED=0
unset RAY_ADDRESS

ADDRESS="127.0.0.1:$GCS_PORT"
PIDS="$DEV_DIR/pids"
LOGS="$DEV_DIR/logs"
TEMP="$DEV_DIR/ray"     # Ray's temp dir (session logs: $TEMP/session_latest/logs)

log() { printf '[ray-dev] %s\n' "$*" >&2; }
die() { printf '[ray-dev] ERROR: %s\n' "$*" >&2; exit 1; }

# Ray's Unix sockets live in $TEMP/session_<timestamp>/sockets/: AF_UNIX paths are limited to 107 bytes.
((${#TEMP} <= 40)) || die "RAY_DEV_DIR is too long (${#DEV_DIR} characters; Ray's socket paths must fit in 107 bytes)"

alive() { [[ -f "$PIDS/$1.pid" ]] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

# Per-node port block: Ray's defaults (52365, 10001, ...) would collide between nodes on one machine.
# Node i (head = 0) gets PORT_BASE + 100*i + {0: node manager, 1: object manager, 2: agent HTTP,
# 3: agent gRPC, 4: runtime env agent}, and worker ports PORT_BASE + 100*i + 10..99.
node_ports() {
    local i="$1" b=$((PORT_BASE + 100 * $1))
    printf -- '--node-manager-port=%d --object-manager-port=%d --dashboard-agent-listen-port=%d ' \
        "$b" "$((b + 1))" "$((b + 2))"
    printf -- '--dashboard-agent-grpc-port=%d --runtime-env-agent-port=%d --min-worker-port=%d --max-worker-port=%d ' \
        "$((b + 3))" "$((b + 4))" "$((b + 10))" "$((b + 99))"
    printf -- '--metrics-export-port=%d' "$((METRICS_PORT + i))"
}

start_node() {  # name, then `ray start` arguments
    local name="$1"; shift
    if alive "$name"; then log "$name already running (pid $(cat "$PIDS/$name.pid"))"; return; fi
    # Its own session (setsid): `down` signals this process group and nothing else.
    setsid "$RAY_BIN" start --block --disable-usage-stats --node-ip-address=127.0.0.1 "$@" \
        >"$LOGS/$name.log" 2>&1 < /dev/null &
    echo $! >"$PIDS/$name.pid"
    log "$name starting (pid $!, log $LOGS/$name.log)"
    # One node at a time: raylets starting together can race for the same free port.
    local deadline=$((SECONDS + 120))
    until grep -q "Ray runtime started" "$LOGS/$name.log" 2>/dev/null; do
        alive "$name" || die "$name exited during startup; see $LOGS/$name.log"
        ((SECONDS < deadline)) || die "$name not started after 120 s; see $LOGS/$name.log"
        sleep 0.2
    done
}

python_bin() { if [[ -x "$RAY_BIN_DIR/python" ]]; then echo "$RAY_BIN_DIR/python"; else echo python3; fi; }

wait_nodes() {  # wait until the head sees 1 + WORKERS alive nodes
    local want=$((1 + WORKERS))
    "$(python_bin)" - "$ADDRESS" "$want" <<'PY' || die "cluster did not come up; logs in $LOGS"
import sys, time
import ray
address, want = sys.argv[1], int(sys.argv[2])
ray.init(address=address, logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + 120
while True:
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) >= want:
        break
    if time.monotonic() > deadline:
        sys.exit(f"only {len(alive)} of {want} nodes alive after 120 s")
    time.sleep(0.5)
PY
}

cmd_up() {
    mkdir -p "$PIDS" "$LOGS" "$TEMP"
    # The shipped ingress on every node (kubernaut/ingress.py; README, "Ingress"): Serve's HAProxy ingress and
    # throughput-optimized replicas unless RAY_SERVE_ENABLE_HA_PROXY / RAY_SERVE_THROUGHPUT_OPTIMIZED are set
    # (0: Serve's default proxy), HAProxy's files in a private directory, its stats listeners on loopback.
    local ingress
    ingress="$("$(python_bin)" -m kubernaut.ingress)" || die "cannot prepare the ingress (python -m kubernaut.ingress)"
    eval "$ingress"
    # All nodes share this machine's Serve port, as Serve's own proxy does by default (SO_REUSEPORT,
    # ray/serve/_private/proxy.py); Serve's HAProxy manager turns it off unless asked (haproxy.py).
    export SERVE_SOCKET_REUSE_PORT_ENABLED="${SERVE_SOCKET_REUSE_PORT_ENABLED:-1}"
    # shellcheck disable=SC2046
    start_node head --head --port="$GCS_PORT" --num-cpus=0 --resources='{"dev_head": 1}' \
        --dashboard-host=127.0.0.1 --dashboard-port="$DASHBOARD_PORT" --ray-client-server-port=$((PORT_BASE + 5)) \
        --temp-dir="$TEMP" $(node_ports 0)
    local i
    for ((i = 1; i <= WORKERS; i++)); do
        # shellcheck disable=SC2046
        start_node "worker$i" --address="$ADDRESS" --num-cpus="$WORKER_CPUS" \
            --resources="{\"dev_worker_$i\": 1}" $(node_ports "$i")
    done
    wait_nodes
    log "up: $((1 + WORKERS)) nodes; RAY_ADDRESS=$ADDRESS dashboard http://127.0.0.1:$DASHBOARD_PORT"
    log "metrics: http://127.0.0.1:$METRICS_PORT/metrics (head) … +$WORKERS (workers)"
    echo "$ADDRESS"
}

cmd_down() {
    local f pid name
    [[ -d "$PIDS" ]] || { log "not running"; return 0; }
    # Workers first, then the head.
    for f in $(ls "$PIDS"/worker*.pid 2>/dev/null) "$PIDS/head.pid"; do
        [[ -f "$f" ]] || continue
        pid="$(cat "$f")"; name="$(basename "$f" .pid)"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL -- "-$pid" 2>/dev/null || true
            log "stopped $name (pid $pid)"
        fi
        rm -f "$f"
    done
}

cmd_kill_worker() {
    local n="${1:?worker number}" f="$PIDS/worker${1}.pid"
    [[ -f "$f" ]] || die "worker$n is not running"
    kill -KILL -- "-$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
    log "killed worker$n"
}

cmd_status() {
    local name
    for name in head $(for ((i = 1; i <= WORKERS; i++)); do echo "worker$i"; done); do
        if alive "$name"; then echo "$name running (pid $(cat "$PIDS/$name.pid"))"; else echo "$name stopped"; fi
    done
    if alive head; then "$RAY_BIN" status --address="$ADDRESS" || true; fi
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    kill-worker) shift; cmd_kill_worker "$@" ;;
    deploy)
        alive head || die "not running: $0 up"
        "$RAY_BIN_DIR/serve" deploy "$SERVE_CONFIG" --address "http://127.0.0.1:$DASHBOARD_PORT" ;;
    run)
        alive head || die "not running: $0 up"
        RAY_ADDRESS="$ADDRESS" exec "$RAY_BIN_DIR/serve" run "$SERVE_CONFIG" ;;
    *) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
