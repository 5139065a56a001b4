"""The ``bedrock-converse`` provider against a loopback ConverseStream upstream.

The upstream answers with AWS event-stream frames (prelude, headers, JSON payload, CRCs) as
Bedrock sends them, or misbehaves. boto3 signs with fake credentials and the route's
``endpoint_url`` points at the loopback server: nothing leaves the machine.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from tests.unit.test_provider_openai_chat import BODY_SECRET, in_turn, request_body, start
from tests.unit.test_provider_transport import DEADLINE_S, Conn, RawServer, headers_then, servers, wait_until
from turnstop.providers.base import CallAborted, Chunk, Message, ModelRequest, UpstreamError, UpstreamErrorKind
from turnstop.providers.bedrock_converse import BedrockConverseProvider
from turnstop.providers.config import Route

__all__ = ["servers"]

EVENTSTREAM = "application/vnd.amazon.eventstream"


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "secret-test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message (string headers only)."""
    encoded = b"".join(
        struct.pack("!B", len(k)) + k.encode() + struct.pack("!BH", 7, len(v)) + v.encode() for k, v in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack("!I", zlib.crc32(message))


def event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(payload).encode())


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message}).encode())


def text(t: str) -> bytes:
    return event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}})


GOOD = [
    event("messageStart", {"role": "assistant"}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "let me think"}}}),
    text("Hello"),
    text(" world"),
    event("contentBlockStop", {"contentBlockIndex": 0}),
    event("messageStop", {"stopReason": "end_turn"}),
    event(
        "metadata",
        {
            "usage": {"inputTokens": 11, "outputTokens": 5, "totalTokens": 16, "cacheReadInputTokens": 3},
            "metrics": {"latencyMs": 10},
        },
    ),
]


def aws_error(status: int, kind: str) -> Callable[[Conn], None]:
    def script(conn: Conn) -> None:
        body = json.dumps({"message": BODY_SECRET}).encode()
        conn.sock.sendall(
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nx-amzn-ErrorType: {kind}:http://x\r\n"
            f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )

    return script


def stream(parts: list[bytes], *, stall: bool = False) -> Callable[[Conn], None]:
    return headers_then(parts, stall=stall, content_type=EVENTSTREAM)


def route(server: RawServer, **changes: Any) -> Route:
    base = Route(
        "claude",
        "bedrock-converse",
        "anthropic.test-model",
        region="us-east-1",
        endpoint_url=server.url,
        max_output_tokens=64,
    )
    return replace(base, **changes)


REQUEST = ModelRequest(
    "And now?",
    instructions="Be brief.",
    history=(Message("user", "Hi"), Message("assistant", "Yo")),
    max_output_tokens=1000,
    sampling={"temperature": 0.2, "top_p": 0.9, "stop": "END"},
)


def test_streams_text_thinking_finish_reason_and_usage(servers: Callable[..., RawServer]) -> None:
    server = servers(stream(GOOD))
    outcome = start(BedrockConverseProvider(route(server)).open(REQUEST)).wait()
    assert outcome.error is None, outcome.error
    assert outcome.chunks == [Chunk("let me think", "thinking"), Chunk("Hello"), Chunk(" world")]
    call = outcome.call
    assert call.finish_reason == "stop"
    assert call.usage is not None and not call.usage.estimated
    assert (call.usage.input_tokens, call.usage.output_tokens, call.usage.cached_tokens) == (14, 5, 3)  # 11 + 3 cached


def test_sends_system_history_input_a_capped_max_tokens_and_sampling(servers: Callable[..., RawServer]) -> None:
    server = servers(stream(GOOD))
    start(BedrockConverseProvider(route(server)).open(REQUEST)).wait()
    conn = server.conns[0]
    assert conn.request.startswith(b"POST /model/anthropic.test-model/converse-stream ")
    assert b"authorization: aws4-hmac-sha256" in conn.request.lower()  # signed by botocore
    body = request_body(conn)
    assert body["system"] == [{"text": "Be brief."}]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Hi"}]},
        {"role": "assistant", "content": [{"text": "Yo"}]},
        {"role": "user", "content": [{"text": "And now?"}]},
    ]
    assert body["inferenceConfig"] == {"maxTokens": 64, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]}


def test_max_tokens_is_always_sent(servers: Callable[..., RawServer]) -> None:
    server = servers(stream(GOOD))
    start(BedrockConverseProvider(route(server, max_output_tokens=500)).open(ModelRequest("x"))).wait()
    body = request_body(server.conns[0])
    assert body["inferenceConfig"] == {"maxTokens": 500} and "system" not in body


@pytest.mark.parametrize("phase", ["connecting", "prefill", "headers", "mid-stream"])
def test_abort_in_every_phase_ends_with_call_aborted(servers: Callable[..., RawServer], phase: str) -> None:
    scripts: dict[str, Callable[[Conn], None] | None] = {
        "prefill": None,
        "headers": stream([], stall=True),
        "mid-stream": stream(GOOD[:3], stall=True),
    }
    server = servers(scripts.get(phase), accept=phase != "connecting")
    call = BedrockConverseProvider(route(server)).open(ModelRequest("hi"))
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
    assert len(server.conns) <= 1


@pytest.mark.parametrize("where", ["first byte", "idle"])
def test_timeouts_end_with_an_upstream_timeout(servers: Callable[..., RawServer], where: str) -> None:
    server = servers(stream([] if where == "first byte" else GOOD[:3], stall=True))
    r = route(server, first_byte_timeout_s=0.3, idle_timeout_s=0.3, retry_budget_s=0)
    outcome = start(BedrockConverseProvider(r).open(ModelRequest("hi"))).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.TIMEOUT
    assert server.conns[0].disconnected.wait(DEADLINE_S)


def test_throttling_then_success_is_retried(servers: Callable[..., RawServer]) -> None:
    server = servers(in_turn(aws_error(429, "ThrottlingException"), stream(GOOD)))
    outcome = start(BedrockConverseProvider(route(server)).open(ModelRequest("hi"))).wait()
    assert outcome.error is None and len(server.conns) == 2
    assert "".join(c.text for c in outcome.chunks if c.kind == "text") == "Hello world"


@pytest.mark.parametrize(
    ("status", "name", "kind"),
    [
        (429, "ThrottlingException", UpstreamErrorKind.RATE_LIMITED),
        (503, "ServiceUnavailableException", UpstreamErrorKind.SERVER),
        (500, "InternalServerException", UpstreamErrorKind.SERVER),
        (400, "ValidationException", UpstreamErrorKind.REJECTED),
        (403, "AccessDeniedException", UpstreamErrorKind.REJECTED),
    ],
)
def test_http_errors_map_to_kinds_without_the_body(
    servers: Callable[..., RawServer], status: int, name: str, kind: UpstreamErrorKind
) -> None:
    server = servers(aws_error(status, name))
    outcome = start(BedrockConverseProvider(route(server, retry_budget_s=0)).open(ModelRequest("hi"))).wait()
    error = outcome.error
    assert isinstance(error, UpstreamError) and error.kind is kind and error.status == status
    shown = f"{error} {error!r} {error.__cause__!r} {error.__context__!r}"
    assert BODY_SECRET not in shown and "AKIDTEST" not in shown and str(status) in str(error)
    assert len(server.conns) == 1


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("throttlingException", UpstreamErrorKind.RATE_LIMITED),
        ("modelStreamErrorException", UpstreamErrorKind.SERVER),
        ("internalServerException", UpstreamErrorKind.SERVER),
        ("validationException", UpstreamErrorKind.REJECTED),
    ],
)
def test_an_exception_frame_after_the_first_token_is_not_retried(
    servers: Callable[..., RawServer], name: str, kind: UpstreamErrorKind
) -> None:
    server = servers(stream([*GOOD[:3], exception(name, BODY_SECRET)]))
    outcome = start(BedrockConverseProvider(route(server)).open(ModelRequest("hi"))).wait()
    assert outcome.chunks == [Chunk("let me think", "thinking"), Chunk("Hello")]
    error = outcome.error
    assert isinstance(error, UpstreamError) and error.kind is kind and BODY_SECRET not in str(error)
    assert len(server.conns) == 1


def test_garbage_and_a_close_mid_stream_are_bad_responses(servers: Callable[..., RawServer]) -> None:
    garbage = servers(stream([b"\x00\x00\x00\x10this is not an event stream at all"]))
    outcome = start(BedrockConverseProvider(route(garbage)).open(ModelRequest("hi"))).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.BAD_RESPONSE

    def close_mid_stream(conn: Conn) -> None:
        stream(GOOD[:3], stall=True)(conn)
        conn.sock.shutdown(2)

    closing = servers(close_mid_stream)
    outcome = start(BedrockConverseProvider(route(closing)).open(ModelRequest("hi"))).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.BAD_RESPONSE
    assert len(closing.conns) == 1

    ended = servers(stream(GOOD[:3]))  # a complete HTTP body without messageStop
    outcome = start(BedrockConverseProvider(route(ended)).open(ModelRequest("hi"))).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.BAD_RESPONSE


def test_other_clients_of_the_process_are_untouched(servers: Callable[..., RawServer]) -> None:
    """The before-send handler answers only inside a call; elsewhere botocore sends as usual."""
    import boto3

    server = servers(stream(GOOD))
    provider = BedrockConverseProvider(route(server))
    outcome = start(provider.open(ModelRequest("hi"))).wait()
    assert outcome.error is None
    plain = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=server.url)
    response = plain.converse_stream(modelId="m", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert [e for e in response["stream"] if "messageStop" in e]
    assert len(server.conns) == 2


def test_no_credentials_is_a_rejection_before_any_connection(
    servers: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import boto3

    server = servers(stream(GOOD))
    provider = BedrockConverseProvider(route(server), session=boto3.session.Session())  # no cached credentials
    outcome = start(provider.open(ModelRequest("hi"))).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.REJECTED
    assert not server.conns
