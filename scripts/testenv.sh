#!/usr/bin/env bash
# Real Kubernetes test control plane without Docker:
# etcd + kube-apiserver + kube-controller-manager + kube-scheduler (built from Debian's
# `kubernetes` source package, 1.20) and a simulated kubelet (scripts/simkubelet.py).
#
#   scripts/testenv.sh build    build and cache the binaries (idempotent, ~5 min cold)
#   scripts/testenv.sh up       start (or reuse) the control plane; last stdout line = admin kubeconfig
#   scripts/testenv.sh down     stop everything and remove the state dir (etcd data included)
#   scripts/testenv.sh status   show components; exit 0 only when the apiserver is healthy
#
#   --name NAME (after the command) selects another instance, e.g. a second cluster of a fleet test:
#   `scripts/testenv.sh up --name b`. Its state dir is the default's plus -NAME (/tmp/kubernaut-testenv-b) and
#   its ports are the default's plus 10 x a slot derived from NAME, so it never touches the default instance.
#
# Environment:
#   KUBERNAUT_CACHE              binary cache root            (default ~/.cache/kubernaut)
#   KUBERNAUT_TESTENV_DIR        state dir: certs, kubeconfigs, logs, pids (default /tmp/kubernaut-testenv)
#   KUBERNAUT_TESTENV_PORT       kube-apiserver secure port   (default 6443)
#   KUBERNAUT_TESTENV_ETCD_PORT  etcd client port, peer = +1  (default 2379)
#   KUBERNAUT_TESTENV_TIMEOUT    seconds `up` waits for health (default 120)
#   KUBERNAUT_SIM_NODES / KUBERNAUT_SIM_NODE_CPU / KUBERNAUT_SIM_NODE_MEMORY / KUBERNAUT_SIM_NODE_PODS
#                                simulated nodes (default 2 x 8 CPU, 32Gi, 110 pods)
#   KUBERNAUT_PYTHON             python with the `kubernetes` client for the simulated kubelet
set -euo pipefail

COMMAND="${1:-}"
INSTANCE=""
shift || true
while (($#)); do
    case "$1" in
        --name) INSTANCE="${2:-}"; shift 2 || { echo "--name needs a value" >&2; exit 2; } ;;
        --name=*) INSTANCE="${1#--name=}"; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
if [[ -n "$INSTANCE" ]]; then
    [[ "$INSTANCE" =~ ^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$ ]] || { echo "bad --name: $INSTANCE" >&2; exit 2; }
    # A stable slot 1..40 per name: ports 6443+10*slot (apiserver) and 2379+10*slot (etcd, peer +1),
    # away from the default instance's 6443 and 2379/2380.
    # Derived from the default instance's settings, never equal to them (whatever the environment says).
    SLOT=$((1 + $(printf '%s' "$INSTANCE" | cksum | cut -d' ' -f1) % 40))
    KUBERNAUT_TESTENV_DIR="${KUBERNAUT_TESTENV_DIR:-/tmp/kubernaut-testenv}-$INSTANCE"
    KUBERNAUT_TESTENV_PORT=$((${KUBERNAUT_TESTENV_PORT:-6443} + 10 * SLOT))
    KUBERNAUT_TESTENV_ETCD_PORT=$((${KUBERNAUT_TESTENV_ETCD_PORT:-2379} + 10 * SLOT))
fi

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

CACHE_DIR="${KUBERNAUT_CACHE:-$HOME/.cache/kubernaut}"
BIN_DIR="$CACHE_DIR/kube-bin"
STATE_DIR="${KUBERNAUT_TESTENV_DIR:-/tmp/kubernaut-testenv}"
API_PORT="${KUBERNAUT_TESTENV_PORT:-6443}"
ETCD_PORT="${KUBERNAUT_TESTENV_ETCD_PORT:-2379}"
ETCD_PEER_PORT="$((ETCD_PORT + 1))"
UP_TIMEOUT="${KUBERNAUT_TESTENV_TIMEOUT:-120}"
SIM_NODES="${KUBERNAUT_SIM_NODES:-2}"
SIM_NODE_CPU="${KUBERNAUT_SIM_NODE_CPU:-8}"
SIM_NODE_MEMORY="${KUBERNAUT_SIM_NODE_MEMORY:-32Gi}"
SIM_NODE_PODS="${KUBERNAUT_SIM_NODE_PODS:-110}"

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler simkubelet)
APT_PACKAGES=(golang-go rsync jq dpkg-dev etcd-server openssl curl)
KUBE_VERSION_FALLBACK="v1.20.2"
# Bump when the build recipe changes: cached binaries with another id are rebuilt.
BUILD_ID="k8s-1.20-debian-src+reflect2-go118-fix.1"

PKI="$STATE_DIR/pki"
LOGS="$STATE_DIR/logs"
PIDS="$STATE_DIR/pids"
ADMIN_KUBECONFIG="$STATE_DIR/admin.kubeconfig"
# etcd data on tmpfs; keyed by the state dir so parallel environments do not share it.
ETCD_DATA="/dev/shm/kubernaut-testenv-etcd-$(printf '%s' "$STATE_DIR" | md5sum | cut -c1-10)"

log() { printf '[testenv] %s\n' "$*" >&2; }
die() { printf '[testenv] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------
binaries_cached() {
    local b
    for b in "${BINARIES[@]}"; do
        [[ -x "$BIN_DIR/$b" ]] || return 1
    done
    [[ "$(cat "$BIN_DIR/BUILD_ID" 2>/dev/null)" == "$BUILD_ID" ]]
}

# Kubernetes 1.20 vendors github.com/modern-go/reflect2 v1.0.1, whose linkname'd
# reflect.mapiterinit has the pre-Go-1.18 signature. Built with Debian's Go 1.19 the binaries
# corrupt memory and crash at random (SIGSEGV in aeshashbody under json-iterator's map
# encoder, usually seconds after the apiserver starts). Apply the reflect2 v1.0.2 fix.
patch_reflect2() {
    local d="$1/vendor/github.com/modern-go/reflect2"
    [[ -f "$d/unsafe_link.go" ]] || return 0
    grep -q 'func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer) \*hiter' "$d/unsafe_link.go" || return 0
    log "patching vendored reflect2 for Go >= 1.18 (mapiterinit signature)"
    HITER='type hiter struct {
	key         unsafe.Pointer
	value       unsafe.Pointer
	t           unsafe.Pointer
	h           unsafe.Pointer
	buckets     unsafe.Pointer
	bptr        unsafe.Pointer
	overflow    *[]unsafe.Pointer
	oldoverflow *[]unsafe.Pointer
	startBucket uintptr
	offset      uint8
	wrapped     bool
	B           uint8
	i           uint8
	bucket      uintptr
	checkBucket uintptr
}' perl -0pi -e '
        s/func mapiterinit\(rtype unsafe\.Pointer, m unsafe\.Pointer\) \*hiter/func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer, it *hiter)/;
        s/type hiter struct \{.*?\n\}/$ENV{HITER}/s;' "$d/unsafe_link.go"
    perl -0pi -e '
        s/\treturn &UnsafeMapIterator\{\n\t\thiter:\s+mapiterinit\(type2\.rtype, \*\(\*unsafe\.Pointer\)\(obj\)\),/\tvar it hiter\n\tmapiterinit(type2.rtype, *(*unsafe.Pointer)(obj), &it)\n\treturn &UnsafeMapIterator{\n\t\thiter:      &it,/;' \
        "$d/unsafe_map.go"
    if ! grep -q 'mapiterinit(type2.rtype, \*(\*unsafe.Pointer)(obj), &it)' "$d/unsafe_map.go" \
        || ! grep -q 'checkBucket uintptr' "$d/unsafe_link.go"; then
        die "could not patch $d"
    fi
}

ensure_apt_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "apt-get install ${missing[*]}"
        [[ $(id -u) -eq 0 ]] || die "need root to install: ${missing[*]}"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
        # On hosts with systemd the package starts a system etcd on our port: we only want the binary.
        if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null \
            && systemctl is-active --quiet etcd 2>/dev/null; then
            log "disabling the etcd system service installed by etcd-server"
            systemctl disable --now etcd >&2 || true
        fi
    fi
}

deb_src_known() { apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes'; }

ensure_deb_src() {
    deb_src_known && return 0
    [[ $(id -u) -eq 0 ]] || die "need root to add deb-src entries"
    if ! grep -rqsE '^[[:space:]]*(deb-src[[:space:]].*bookworm|Types:.*deb-src)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "adding deb-src entries for bookworm + bookworm-updates (main)"
        cat >/etc/apt/sources.list.d/kubernaut-deb-src.sources <<'EOF2'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF2
    fi
    apt-get update -qq >&2
    deb_src_known || die "apt-cache showsrc kubernetes finds nothing after adding deb-src"
}

cmd_build() {
    if binaries_cached; then
        log "binaries cached in $BIN_DIR"
        return 0
    fi
    mkdir -p "$CACHE_DIR"
    exec 8>"$CACHE_DIR/build.lock"
    flock 8
    if binaries_cached; then
        return 0
    fi
    local start=$SECONDS
    ensure_apt_packages
    ensure_deb_src
    local work="$CACHE_DIR/src"
    rm -rf "$work"
    mkdir -p "$work"
    log "apt-get source kubernetes (in $work)"
    (cd "$work" && apt-get source -qq kubernetes >&2)
    local tree
    tree="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)"
    [[ -n "$tree" && -f "$tree/Makefile" ]] || die "kubernetes source tree not found in $work"
    # There is no git tree: give the build a version (the Debian version says "really1.20.2").
    local ver="$KUBE_VERSION_FALLBACK" minor
    if [[ "$(basename "$tree")" =~ really([0-9]+\.[0-9]+\.[0-9]+) ]]; then
        ver="v${BASH_REMATCH[1]}"
    elif [[ "$(basename "$tree")" =~ kubernetes-([0-9]+\.[0-9]+\.[0-9]+) ]]; then
        ver="v${BASH_REMATCH[1]}"
    fi
    minor="$(echo "$ver" | cut -d. -f2)"
    patch_reflect2 "$tree"
    cat >"$work/version.env" <<EOF
KUBE_GIT_COMMIT='0000000000000000000000000000000000000000'
KUBE_GIT_TREE_STATE='clean'
KUBE_GIT_VERSION='$ver'
KUBE_GIT_MAJOR='1'
KUBE_GIT_MINOR='$minor'
EOF
    log "make WHAT=\"cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler\" ($ver; ~5 min)"
    (cd "$tree" && KUBE_GIT_VERSION_FILE="$work/version.env" \
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" >"$work/build.log" 2>&1) \
        || { tail -n 40 "$work/build.log" >&2; die "build failed (log: $work/build.log)"; }
    mkdir -p "$BIN_DIR.tmp"
    local b
    for b in "${BINARIES[@]}"; do
        install -m 0755 "$tree/_output/bin/$b" "$BIN_DIR.tmp/$b"
    done
    echo "$BUILD_ID" >"$BIN_DIR.tmp/BUILD_ID"
    rm -rf "$BIN_DIR"
    mv "$BIN_DIR.tmp" "$BIN_DIR"
    rm -rf "$work"
    log "built and cached in $BIN_DIR in $((SECONDS - start)) s"
}

# ---------------------------------------------------------------------------------------------
# process helpers
# ---------------------------------------------------------------------------------------------
pid_of() { if [[ -f "$PIDS/$1.pid" ]]; then cat "$PIDS/$1.pid"; fi; }

running() { # component: its pid file names a live process that is really that component
    local pid cmd pattern="$1"
    [[ "$1" == simkubelet ]] && pattern="simkubelet.py"
    pid="$(pid_of "$1")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmd" == *"$pattern"* ]]
}

start_bg() { # name cmd...
    local name="$1"
    shift
    mkdir -p "$LOGS" "$PIDS"
    # setsid: own session, survives the caller; no inherited stdout (a capturing parent would hang).
    # Close the lock fds (8, 9): a child holding them would block every later up/down.
    setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 8>&- 9>&- &
    echo $! >"$PIDS/$name.pid"
    log "started $name (pid $!, log $LOGS/$name.log)"
}

stop_components() { # names...: SIGTERM them together, wait up to 10 s, then SIGKILL
    local name pid i
    local -a pids=()
    for name in "$@"; do
        if running "$name"; then
            pid="$(pid_of "$name")"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            log "stopping $name (pid $pid)"
        fi
        rm -f "$PIDS/$name.pid"
    done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid ignored SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

admin_token() { cat "$PKI/admin.token"; }

api_get() { # path -> body on stdout, fails on non-2xx
    curl -sSf --max-time 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(admin_token)" \
        "https://127.0.0.1:$API_PORT$1"
}

api_healthy() {
    [[ -f "$PKI/admin.token" && -f "$PKI/ca.crt" ]] || return 1
    [[ "$(api_get /readyz 2>/dev/null)" == "ok" ]]
}

wait_until() { # description deadline_epoch cmd...
    local what="$1" deadline="$2"
    shift 2
    until "$@"; do
        check_alive
        if (($(date +%s) >= deadline)); then
            log "timed out waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

# Fail fast when a component started by us has exited (instead of waiting for the deadline).
check_alive() {
    local c
    for c in "${COMPONENTS[@]}"; do
        if [[ -f "$PIDS/$c.pid" ]] && ! running "$c"; then
            log "$c exited; last lines of $LOGS/$c.log:"
            tail -n 25 "$LOGS/$c.log" >&2 || true
            die "$c exited during startup"
        fi
    done
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# certificates, tokens, kubeconfigs
# ---------------------------------------------------------------------------------------------
gen_pki() {
    mkdir -p "$PKI"
    chmod 700 "$PKI"
    if [[ ! -f "$PKI/ca.crt" ]]; then
        log "generating throw-away CA, serving cert, service-account keys, tokens"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kubernaut-testenv-ca" \
            -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
        cat >"$PKI/apiserver.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
        openssl req -new -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
            -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" 2>/dev/null
        openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
            -days 3650 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt" 2>/dev/null
        openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
        openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
        openssl rand -hex 24 >"$PKI/admin.token"
        openssl rand -hex 24 >"$PKI/rightless.token"
        openssl rand -hex 24 >"$PKI/executor.token"
        {
            echo "$(cat "$PKI/admin.token"),kubernaut-admin,kubernaut-admin,\"system:masters\""
            echo "$(cat "$PKI/rightless.token"),nobody,nobody"
            echo "$(cat "$PKI/executor.token"),kubernaut-executor,kubernaut-executor"
        } >"$PKI/tokens.csv"
        chmod 600 "$PKI"/*
    fi
}

write_kubeconfig() { # file user token
    local file="$1" user="$2" token="$3" ca
    ca="$(base64 -w0 <"$PKI/ca.crt")"
    (umask 077 && cat >"$file.tmp") <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubernaut-testenv
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: $user@kubernaut-testenv
  context:
    cluster: kubernaut-testenv
    user: $user
    namespace: default
current-context: $user@kubernaut-testenv
EOF
    mv "$file.tmp" "$file"
}

write_kubeconfigs() {
    write_kubeconfig "$ADMIN_KUBECONFIG" kubernaut-admin "$(cat "$PKI/admin.token")"
    write_kubeconfig "$STATE_DIR/rightless.kubeconfig" nobody "$(cat "$PKI/rightless.token")"
    write_kubeconfig "$STATE_DIR/executor.kubeconfig" kubernaut-executor "$(cat "$PKI/executor.token")"
}

# ---------------------------------------------------------------------------------------------
# components
# ---------------------------------------------------------------------------------------------
start_etcd() {
    port_free "$ETCD_PORT" || die "port $ETCD_PORT (etcd) is in use by something else"
    rm -rf "$ETCD_DATA"
    mkdir -p "$ETCD_DATA"
    chmod 700 "$ETCD_DATA"
    start_bg etcd etcd --name kubernaut-testenv --data-dir "$ETCD_DATA" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "kubernaut-testenv=http://127.0.0.1:$ETCD_PEER_PORT" \
        --quota-backend-bytes 1073741824
}

etcd_healthy() {
    curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'
}

start_apiserver() {
    port_free "$API_PORT" || die "port $API_PORT (kube-apiserver) is in use by something else"
    start_bg kube-apiserver "$BIN_DIR/kube-apiserver" \
        --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
        --secure-port="$API_PORT" --insecure-port=0 \
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" \
        --token-auth-file="$PKI/tokens.csv" \
        --authorization-mode=Node,RBAC \
        --service-account-key-file="$PKI/sa.pub" \
        --service-account-signing-key-file="$PKI/sa.key" \
        --service-account-issuer=https://kubernetes.default.svc \
        --service-cluster-ip-range=10.0.0.0/24 \
        --endpoint-reconciler-type=none \
        --allow-privileged=true \
        --profiling=false \
        --v=1
}

start_controller_manager() {
    start_bg kube-controller-manager "$BIN_DIR/kube-controller-manager" \
        --kubeconfig="$ADMIN_KUBECONFIG" \
        --leader-elect=false --port=0 --secure-port=0 \
        --service-account-private-key-file="$PKI/sa.key" \
        --root-ca-file="$PKI/ca.crt" \
        --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
        --controllers='*,-nodeipam,-route,-service,-cloud-node-lifecycle,-attachdetach,-persistentvolume-binder,-persistentvolume-expander' \
        --node-monitor-grace-period=40s \
        --profiling=false \
        --v=1
}

start_scheduler() {
    start_bg kube-scheduler "$BIN_DIR/kube-scheduler" \
        --kubeconfig="$ADMIN_KUBECONFIG" \
        --leader-elect=false --port=0 --secure-port=0 \
        --profiling=false \
        --v=1
}

python_bin() {
    local c
    for c in "${KUBERNAUT_PYTHON:-}" "$REPO_ROOT/.venv/bin/python" python3 python; do
        [[ -n "$c" ]] || continue
        if "$c" -c 'import kubernetes' >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    die "no python with the 'kubernetes' client (set KUBERNAUT_PYTHON or create .venv)"
}

start_simkubelet() {
    local py
    py="$(python_bin)"
    start_bg simkubelet "$py" -u "$SCRIPT_DIR/simkubelet.py" \
        --kubeconfig "$ADMIN_KUBECONFIG" \
        --nodes "$SIM_NODES" --cpu "$SIM_NODE_CPU" --memory "$SIM_NODE_MEMORY" --pods "$SIM_NODE_PODS"
}

ensure_executor_binding() {
    local body code
    body='{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
"metadata":{"name":"kubernaut-executor","labels":{"app.kubernetes.io/part-of":"kubernaut"}},
"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"kubernaut-executor"},
"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"kubernaut-executor"}]}'
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$PKI/ca.crt" \
        -H "Authorization: Bearer $(admin_token)" -H 'Content-Type: application/json' -X POST \
        --data "$body" "https://127.0.0.1:$API_PORT/apis/rbac.authorization.k8s.io/v1/clusterrolebindings" || true)"
    [[ "$code" == 201 || "$code" == 409 ]]
}

sim_nodes_ready() {
    local n
    n="$(api_get '/api/v1/nodes?labelSelector=sim.kubernaut.io%2Fnode%3Dtrue' 2>/dev/null \
        | jq '[.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))
               | select(all(.spec.taints[]?; .key != "node.kubernetes.io/not-ready"))] | length' 2>/dev/null)" \
        || return 1
    [[ -n "$n" ]] && ((n >= SIM_NODES))
}

# On 1.20 the ServiceAccount admission rejects pods until the tokens controller has created the
# default ServiceAccount's token Secret.
default_sa_ready() {
    api_get /api/v1/namespaces/default/serviceaccounts/default 2>/dev/null | jq -e '(.secrets // []) | length > 0' \
        >/dev/null 2>&1
}

all_running() {
    local c
    for c in "${COMPONENTS[@]}"; do
        running "$c" || return 1
    done
}

cmd_up() {
    local started=$SECONDS
    cmd_build
    if ! command -v etcd >/dev/null || ! command -v jq >/dev/null || ! command -v openssl >/dev/null; then
        ensure_apt_packages
    fi
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR.lock"
    flock 9
    local c
    for c in "${COMPONENTS[@]}"; do # forget pid files of exited components
        [[ -f "$PIDS/$c.pid" ]] && ! running "$c" && rm -f "$PIDS/$c.pid"
    done

    if running etcd && [[ -f "$PKI/ca.crt" ]] && etcd_healthy; then
        if all_running && api_healthy; then
            log "reusing the running environment in $STATE_DIR"
        else
            log "etcd running: (re)starting the missing components, keeping the data"
        fi
    else
        if [[ -d "$PIDS" ]]; then
            log "stale environment (etcd not running): restarting from scratch"
            stop_all
        fi
        mkdir -p "$STATE_DIR" "$LOGS" "$PIDS"
        gen_pki
        start_etcd
    fi
    write_kubeconfigs
    local deadline=$(($(date +%s) + UP_TIMEOUT))
    wait_until etcd "$deadline" etcd_healthy || { tail -n 20 "$LOGS/etcd.log" >&2; die "etcd not healthy"; }
    running kube-apiserver || start_apiserver
    wait_until kube-apiserver "$deadline" api_healthy \
        || { tail -n 30 "$LOGS/kube-apiserver.log" >&2; die "kube-apiserver not healthy"; }
    running kube-controller-manager || start_controller_manager
    running kube-scheduler || start_scheduler
    running simkubelet || start_simkubelet
    wait_until "ClusterRoleBinding kubernaut-executor" "$deadline" ensure_executor_binding \
        || die "could not create the kubernaut-executor ClusterRoleBinding"
    wait_until "$SIM_NODES Ready simulated nodes" "$deadline" sim_nodes_ready \
        || { tail -n 30 "$LOGS/simkubelet.log" >&2; die "simulated nodes not Ready"; }
    wait_until "default service account token (controller-manager)" "$deadline" default_sa_ready \
        || { tail -n 30 "$LOGS/kube-controller-manager.log" >&2; die "controller-manager not working"; }
    all_running || die "a component exited; see $LOGS"
    log "up in $((SECONDS - started)) s: apiserver https://127.0.0.1:$API_PORT, $SIM_NODES simulated nodes"
    log "kubeconfigs: $ADMIN_KUBECONFIG $STATE_DIR/rightless.kubeconfig $STATE_DIR/executor.kubeconfig"
    echo "$ADMIN_KUBECONFIG"
}

stop_all() {
    # Clients first (they hold watches that delay the apiserver's shutdown), etcd last.
    stop_components simkubelet kube-scheduler kube-controller-manager
    stop_components kube-apiserver
    stop_components etcd
}

cmd_down() {
    if [[ -d "$STATE_DIR" ]]; then
        exec 9>"$STATE_DIR.lock"
        flock 9
        stop_all
    fi
    rm -rf "$ETCD_DATA" "$STATE_DIR"
    rm -f "$STATE_DIR.lock"
    log "down: removed $STATE_DIR and $ETCD_DATA"
}

cmd_status() {
    local c pid
    for c in "${COMPONENTS[@]}"; do
        pid="$(pid_of "$c")"
        if running "$c"; then
            printf '%-24s running (pid %s)\n' "$c" "$pid"
        else
            printf '%-24s stopped\n' "$c"
        fi
    done
    if api_healthy; then
        printf '%-24s healthy at https://127.0.0.1:%s\n' apiserver "$API_PORT"
        printf '%-24s %s\n' kubeconfig "$ADMIN_KUBECONFIG"
        return 0
    fi
    printf '%-24s not healthy\n' apiserver
    return 1
}

case "$COMMAND" in
    build) cmd_build ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 {build|up|down|status} [--name NAME]" >&2
        exit 2
        ;;
esac
