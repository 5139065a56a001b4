"""The ``openai-chat`` provider against a loopback Chat Completions upstream.

The upstream is a raw socket server (``RawServer``) whose per-connection scripts answer with
SSE frames as OpenAI-compatible servers send them, or misbehave: never accept, stay silent
before the headers, stall, close mid-stream, answer garbage or errors. Aborts come from the test
thread while the call blocks in its own thread, as the runner's keeper does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from tests.unit.test_provider_transport import DEADLINE_S, Conn, RawServer, headers_then, servers, wait_until
from turnstop.providers.base import (
    CallAborted,
    Chunk,
    Message,
    ModelCall,
    ModelRequest,
    UpstreamError,
    UpstreamErrorKind,
)
from turnstop.providers.config import Route
from turnstop.providers.openai_chat import OpenAIChatProvider

__all__ = ["servers"]  # the fixture, shared

KEY = "sk-test-SECRET-KEY-1234"
BODY_SECRET = "upstream-body-detail-must-not-leak"


def route(server: RawServer, **changes: Any) -> Route:
    base = Route("chat", "openai-chat", "tiny-model", base_url=server.url + "/v1", max_output_tokens=64)
    return replace(base, **changes)


def sse(*events: dict[str, Any] | str) -> list[bytes]:
    return [b"data: " + (e.encode() if isinstance(e, str) else json.dumps(e).encode()) + b"\n\n" for e in events]


def delta(content: str | None = None, *, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"role": "assistant", **extra}
    if content is not None:
        d["content"] = content
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "tiny-model",
        "choices": [{"index": 0, "delta": d, "finish_reason": finish}],
    }


USAGE = {
    "id": "c1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "tiny-model",
    "choices": [],
    "usage": {
        "prompt_tokens": 11,
        "completion_tokens": 5,
        "total_tokens": 16,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 2},
    },
}

GOOD = sse(
    delta(reasoning_content="let me think"), delta("Hello"), delta(" world"), delta(finish="stop"), USAGE, "[DONE]"
)


def answer(status: int, payload: Any, *, headers: str = "") -> Callable[[Conn], None]:
    def script(conn: Conn) -> None:
        body = json.dumps(payload).encode()
        conn.sock.sendall(
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"{headers}\r\n".encode()
            + body
        )

    return script


def in_turn(*scripts: Callable[[Conn], None]) -> Callable[[Conn], None]:
    """Each connection gets the next script (the last one repeats)."""
    queue = list(scripts)

    def script(conn: Conn) -> None:
        (queue.pop(0) if len(queue) > 1 else queue[0])(conn)

    return script


def close_now(conn: Conn) -> None:
    conn.sock.shutdown(2)


@dataclass
class Outcome:
    call: ModelCall
    chunks: list[Chunk] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chunks if c.kind == "text")

    def wait(self) -> Outcome:
        assert self.done.wait(DEADLINE_S), "the call did not end"
        return self


def start(call: ModelCall) -> Outcome:
    """Iterate ``call`` on its own thread (as the runner's model thread does)."""
    outcome = Outcome(call)

    def run() -> None:
        try:
            for chunk in call:
                outcome.chunks.append(chunk)
        except BaseException as e:  # noqa: BLE001
            outcome.error = e
        finally:
            outcome.done.set()

    threading.Thread(target=run, daemon=True).start()
    return outcome


def request_body(conn: Conn) -> dict[str, Any]:
    return json.loads(conn.request.partition(b"\r\n\r\n")[2])


def request_headers(conn: Conn) -> str:
    return conn.request.partition(b"\r\n\r\n")[0].decode().lower()


REQUEST = ModelRequest(
    "And now?",
    instructions="Be brief.",
    history=(Message("user", "Hi"), Message("assistant", "Hello!")),
    max_output_tokens=1000,
    sampling={"temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": ["END"], "unknown": 1},
)


def test_streams_text_thinking_finish_reason_and_usage(servers: Callable[..., RawServer]) -> None:
    server = servers(headers_then(GOOD, stall=False))
    outcome = start(OpenAIChatProvider(route(server), KEY).open(REQUEST)).wait()
    assert outcome.error is None
    assert outcome.chunks == [Chunk("let me think", "thinking"), Chunk("Hello"), Chunk(" world")]
    call = outcome.call
    assert call.finish_reason == "stop"
    assert call.usage is not None and not call.usage.estimated
    assert (call.usage.input_tokens, call.usage.output_tokens) == (11, 5)
    assert (call.usage.cached_tokens, call.usage.reasoning_tokens) == (3, 2)


def test_sends_instructions_history_input_cap_and_sampling(servers: Callable[..., RawServer]) -> None:
    server = servers(headers_then(GOOD, stall=False))
    start(OpenAIChatProvider(route(server), KEY).open(REQUEST)).wait()
    conn = server.conns[0]
    assert conn.request.startswith(b"POST /v1/chat/completions ")
    assert f"authorization: bearer {KEY.lower()}" in request_headers(conn)
    body = request_body(conn)
    assert body["model"] == "tiny-model" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And now?"},
    ]
    assert body["max_tokens"] == 64  # the caller asked 1000: the route's cap wins
    assert (body["temperature"], body["top_p"], body["seed"], body["stop"]) == (0.2, 0.9, 7, ["END"])
    assert "unknown" not in body and "presence_penalty" not in body


def test_a_smaller_cap_is_kept_and_no_key_sends_a_placeholder(servers: Callable[..., RawServer]) -> None:
    server = servers(headers_then(GOOD, stall=False))
    start(OpenAIChatProvider(route(server), None).open(ModelRequest("x", max_output_tokens=10))).wait()
    body = request_body(server.conns[0])
    assert body["max_tokens"] == 10
    assert body["messages"] == [{"role": "user", "content": "x"}]


@pytest.mark.parametrize("phase", ["connecting", "prefill", "headers", "mid-stream"])
def test_abort_in_every_phase_ends_with_call_aborted(servers: Callable[..., RawServer], phase: str) -> None:
    scripts: dict[str, Callable[[Conn], None] | None] = {
        "prefill": None,
        "headers": headers_then([]),
        "mid-stream": headers_then(sse(delta("Hello"))),
    }
    server = servers(scripts.get(phase), accept=phase != "connecting")
    call = OpenAIChatProvider(route(server), KEY).open(ModelRequest("hi"))
    outcome = start(call)
    if phase == "connecting":
        wait_until(lambda: (t := call._transport) is not None and t._sockets, what="the connect")
    elif phase == "prefill":
        wait_until(lambda: server.conns and server.conns[0].got_request.is_set(), what="the request")
    elif phase == "headers":
        wait_until(lambda: (t := call._transport) is not None and t.bytes_received, what="the headers")
    else:
        wait_until(lambda: outcome.chunks, what="the first token")
    call.abort()
    outcome.wait()
    assert isinstance(outcome.error, CallAborted), outcome.error
    if phase != "connecting":
        assert server.conns[0].disconnected.wait(DEADLINE_S), "the upstream never saw the disconnect"
    assert len(server.conns) <= 1  # an aborted call is never retried


def test_abort_twice_and_after_the_end_is_harmless(servers: Callable[..., RawServer]) -> None:
    server = servers(headers_then(GOOD, stall=False))
    call = OpenAIChatProvider(route(server), KEY).open(ModelRequest("hi"))
    assert start(call).wait().error is None
    call.abort()
    call.abort()


@pytest.mark.parametrize("where", ["first byte", "idle"])
def test_timeouts_end_with_an_upstream_timeout(servers: Callable[..., RawServer], where: str) -> None:
    parts = [] if where == "first byte" else sse(delta("Hello"))
    server = servers(headers_then(parts))
    r = route(server, first_byte_timeout_s=0.3, idle_timeout_s=0.3, retry_budget_s=0)
    outcome = start(OpenAIChatProvider(r, KEY).open(ModelRequest("hi"))).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.TIMEOUT
    assert ("first token" if where == "first byte" else "idle") in str(outcome.error)
    assert server.conns[0].disconnected.wait(DEADLINE_S)


def test_a_silent_prefill_times_out_too(servers: Callable[..., RawServer]) -> None:
    server = servers()  # never answers
    r = route(server, first_byte_timeout_s=0.3, retry_budget_s=0)
    outcome = start(OpenAIChatProvider(r, KEY).open(ModelRequest("hi"))).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.TIMEOUT
    assert len(server.conns) == 1 and server.conns[0].disconnected.wait(DEADLINE_S)


def test_429_then_success_is_retried_before_the_first_token(servers: Callable[..., RawServer]) -> None:
    limited = answer(429, {"error": {"message": BODY_SECRET}}, headers="retry-after: 0\r\n")
    server = servers(in_turn(limited, headers_then(GOOD, stall=False)))
    outcome = start(OpenAIChatProvider(route(server), KEY).open(ModelRequest("hi"))).wait()
    assert outcome.error is None and outcome.text == "Hello world"
    assert len(server.conns) == 2 and outcome.call.attempts == 2  # type: ignore[attr-defined]


def test_5xx_and_a_closed_connection_are_retried_within_the_budget(servers: Callable[..., RawServer]) -> None:
    server = servers(
        in_turn(answer(503, {"error": {"message": BODY_SECRET}}), close_now, headers_then(GOOD, stall=False))
    )
    outcome = start(OpenAIChatProvider(route(server), KEY).open(ModelRequest("hi"))).wait()
    assert outcome.error is None and outcome.text == "Hello world" and len(server.conns) == 3


def test_the_retry_budget_bounds_the_retries(servers: Callable[..., RawServer]) -> None:
    server = servers(answer(503, {"error": {"message": BODY_SECRET}}, headers="retry-after: 30\r\n"))
    outcome = start(OpenAIChatProvider(route(server, retry_budget_s=1), KEY).open(ModelRequest("hi"))).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.SERVER
    assert outcome.error.status == 503 and len(server.conns) == 1  # waiting 30 s would pass the budget


def test_an_error_after_the_first_token_is_not_retried(servers: Callable[..., RawServer]) -> None:
    error = {"error": {"message": BODY_SECRET, "type": "server_error", "code": 500}}
    server = servers(headers_then([*sse(delta("Hello")), *sse(error)], stall=False))
    outcome = start(OpenAIChatProvider(route(server), KEY).open(ModelRequest("hi"))).wait()
    assert outcome.text == "Hello"
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.SERVER
    assert len(server.conns) == 1


@pytest.mark.parametrize("parts", [[b"this is not a stream at all\n"], [b"data: {not json\n\n"]], ids=["text", "json"])
def test_garbage_is_a_bad_response(servers: Callable[..., RawServer], parts: list[bytes]) -> None:
    server = servers(headers_then(parts, stall=False))
    outcome = start(OpenAIChatProvider(route(server), KEY).open(ModelRequest("hi"))).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.BAD_RESPONSE


def test_a_close_mid_stream_is_a_bad_response(servers: Callable[..., RawServer]) -> None:
    def script(conn: Conn) -> None:
        headers_then(sse(delta("Hello")))(conn)
        conn.sock.shutdown(2)

    server = servers(script)
    outcome = start(OpenAIChatProvider(route(server), KEY).open(ModelRequest("hi"))).wait()
    assert outcome.text == "Hello"
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.BAD_RESPONSE
    assert len(server.conns) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 500])
def test_errors_never_carry_the_key_or_the_upstream_body(servers: Callable[..., RawServer], status: int) -> None:
    server = servers(answer(status, {"error": {"message": f"{BODY_SECRET} for key {KEY}"}}))
    r = route(server, retry_budget_s=0)
    outcome = start(OpenAIChatProvider(r, KEY).open(ModelRequest("hi"))).wait()
    error = outcome.error
    assert isinstance(error, UpstreamError) and error.status == status
    assert error.kind is (UpstreamErrorKind.SERVER if status >= 500 else UpstreamErrorKind.REJECTED)
    shown = f"{error} {error!r} {error.__cause__!r} {error.__context__!r}"
    assert KEY not in shown and BODY_SECRET not in shown and str(status) in str(error)
    assert KEY not in repr(OpenAIChatProvider(r, KEY))


def test_connect_refused_is_a_connect_error_after_the_retries() -> None:
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    r = Route("chat", "openai-chat", "m", base_url=f"http://127.0.0.1:{port}/v1", retry_budget_s=0.5)
    outcome = start(OpenAIChatProvider(r, KEY).open(ModelRequest("hi"))).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.CONNECT
    assert outcome.call.attempts >= 2  # type: ignore[attr-defined]


def test_an_abort_during_the_backoff_wait_ends_at_once(servers: Callable[..., RawServer]) -> None:
    server = servers(answer(429, {"error": {"message": "slow down"}}, headers="retry-after: 5\r\n"))
    call = OpenAIChatProvider(route(server), KEY).open(ModelRequest("hi"))
    outcome = start(call)
    wait_until(lambda: server.conns and server.conns[0].disconnected.is_set(), what="the first attempt")
    call.abort()
    outcome.wait()
    assert isinstance(outcome.error, CallAborted)
