"""Amazon Bedrock's ``POST /model/{modelId}/converse-stream``, as AWS sends it.

The answer is HTTP 200 with ``application/vnd.amazon.eventstream``: binary frames of a 12-byte
prelude (total length, headers length, the prelude's CRC32), headers (``:event-type``,
``:content-type: application/json``, ``:message-type: event``; each a 1-byte name length, the
name, type 7 = string, a 2-byte value length, the value), a JSON payload, and the CRC32 of
everything before it. The events: ``messageStart``; thinking as ``contentBlockDelta`` with
``reasoningContent.text`` (then its ``signature`` and a ``contentBlockStop``); text as
``contentBlockDelta`` with ``text`` in the next block, its ``contentBlockStop``; ``messageStop``
(``stopReason`` ``end_turn``, or ``max_tokens`` when ``inferenceConfig.maxTokens`` cut it);
``metadata`` (``usage`` and ``metrics.latencyMs``). Each payload carries the ``p`` padding field
AWS adds (an alphabet prefix of varying length), which clients ignore.

Usage follows Bedrock: ``inputTokens`` are the input tokens not read from the cache,
``cacheReadInputTokens`` the cached ones, ``totalTokens`` their sum plus ``outputTokens``.

A failure before the stream is a plain HTTP error with ``x-amzn-ErrorType`` and
``{"message": ...}`` (429 ``ThrottlingException``...); inside it, an exception frame
(``:message-type: exception``, ``:exception-type: throttlingException``...).
"""

from __future__ import annotations

import json
import re
import struct
import time
import uuid
from binascii import crc32
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from turnstop_local.fake_upstream.behaviour import Behaviour, Fail, Plan, count_words, plan_for
from turnstop_local.fake_upstream.exchange import Exchange
from turnstop_local.fake_upstream.openai_wire import GARBAGE

if TYPE_CHECKING:
    from turnstop_local.fake_upstream.server import FakeUpstream

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

# status -> (HTTP error type, in-stream exception type, default message)
_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("ValidationException", "validationException", "The provided request is not valid."),
    403: (
        "AccessDeniedException",
        "modelStreamErrorException",
        "You don't have access to the model with the specified model ID.",
    ),
    404: ("ResourceNotFoundException", "modelStreamErrorException", "The provided model identifier is invalid."),
    408: ("ModelTimeoutException", "modelStreamErrorException", "Model has timed out in processing the request."),
    424: ("ModelErrorException", "modelStreamErrorException", "The model returned an error."),
    429: ("ThrottlingException", "throttlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "internalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "serviceUnavailableException", "The service is currently unavailable."),
}


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + b"\x07" + struct.pack("!H", len(raw_value)) + raw_value


def frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message, checksummed as AWS does."""
    header_bytes = b"".join(_header(name, value) for name, value in headers)
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(header_bytes))
    message = prelude + struct.pack("!I", crc32(prelude) & 0xFFFFFFFF) + header_bytes + payload
    return message + struct.pack("!I", crc32(message) & 0xFFFFFFFF)


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")]
    return frame(headers, body)


def exception(exception_type: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [
        (":exception-type", exception_type),
        (":content-type", "application/json"),
        (":message-type", "exception"),
    ]
    return frame(headers, body)


def pad(seed: int) -> str:
    return _PAD[: 1 + (seed * 7) % len(_PAD)]


def input_tokens(body: dict[str, Any]) -> int:
    texts = [b["text"] for b in body.get("system") or [] if isinstance(b, dict) and isinstance(b.get("text"), str)]
    for message in body.get("messages") or []:
        for block in (message.get("content") or []) if isinstance(message, dict) else []:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                texts.append(block["text"])
    return count_words(texts)


def _request_id() -> tuple[str, str]:
    return ("x-amzn-RequestId", str(uuid.uuid4()))


def http_error(exchange: Exchange, failure: Fail) -> None:
    """A failure before the stream: the status, ``x-amzn-ErrorType`` and ``{"message": ...}``."""
    error_type, _, default_message = _ERRORS.get(failure.status, ("InternalServerException", "", "Internal error."))
    error_type = failure.code or error_type
    extra = [_request_id(), ("x-amzn-ErrorType", error_type + _ERROR_NAMESPACE)]
    if failure.retry_after is not None:
        extra.append(("Retry-After", f"{failure.retry_after:g}"))
    body = (
        failure.body
        if failure.body is not None
        else json.dumps({"message": failure.message or default_message}).encode()
    )
    exchange.answer(failure.status, body, "application/json", extra)


def exception_frame(failure: Fail) -> bytes:
    _, exception_type, default_message = _ERRORS.get(
        failure.status, ("", "modelStreamErrorException", "The model returned an error.")
    )
    exception_type = failure.code or exception_type
    payload: dict[str, Any] = {"message": failure.message or default_message}
    if exception_type == "modelStreamErrorException":
        payload.update(originalStatusCode=failure.status, originalMessage=payload["message"])
    return exception(exception_type, payload)


def handle(server: FakeUpstream, exchange: Exchange, match: re.Match[str], query: dict[str, list[str]]) -> None:
    model = unquote(match["model"])
    body = exchange.record.body
    exchange.record.update(protocol="bedrock-converse", model=model)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        http_error(exchange, Fail(400, "Malformed input request, please reformat your input and try again."))
        return
    behaviour = server.behaviour_for(model)
    if behaviour is None:
        http_error(exchange, Fail(404))
        return
    behaviour, failure = behaviour.for_attempt(server.next_attempt(model))
    config = body.get("inferenceConfig") or {}
    max_tokens = config.get("maxTokens") if isinstance(config.get("maxTokens"), int) else None
    plan = plan_for(behaviour, input_tokens(body), max_tokens)
    if not exchange.prefill(behaviour, plan.output_tokens):
        return
    if failure is not None and behaviour.fail_after is None:
        http_error(exchange, failure)
        return
    if behaviour.garbage:
        if exchange.send_headers(200, [("Content-Type", CONTENT_TYPE), _request_id()], chunked=True):
            exchange.end("garbage", GARBAGE)
        return
    _stream(exchange, behaviour, plan, failure or Fail())


def _stream(exchange: Exchange, behaviour: Behaviour, plan: Plan, failure: Fail) -> None:
    thinking = len(plan.thinking)
    text_block = 1 if thinking else 0

    def emit(index: int, kind: str, piece: str) -> bytes:
        prefix = b""
        if kind == "text" and index == thinking and thinking:
            prefix = _close_reasoning(index)
        block = 0 if kind == "thinking" else text_block
        delta: dict[str, Any] = {"reasoningContent": {"text": piece}} if kind == "thinking" else {"text": piece}
        return prefix + event("contentBlockDelta", {"contentBlockIndex": block, "delta": delta, "p": pad(index)})

    if not exchange.send_headers(200, [("Content-Type", CONTENT_TYPE), _request_id()], chunked=True):
        return
    if not exchange.write(event("messageStart", {"p": pad(0), "role": "assistant"})):
        return
    result = exchange.stream_tokens(behaviour, plan, emit)
    if result == "fail":
        exchange.end("failed", exception_frame(failure))
        return
    if result != "done":
        return
    tail = _close_reasoning(thinking) if thinking and not plan.text else b""
    if plan.text:
        tail += event("contentBlockStop", {"contentBlockIndex": text_block, "p": pad(1)})
    tail += event("messageStop", {"p": pad(2), "stopReason": "max_tokens" if plan.truncated else "end_turn"})
    cached = plan.cached_tokens
    usage = {
        "inputTokens": plan.input_tokens - cached,
        "outputTokens": plan.output_tokens,
        "totalTokens": plan.input_tokens + plan.output_tokens,
        "cacheReadInputTokens": cached,
        "cacheWriteInputTokens": 0,
    }
    latency = int((time.monotonic() - exchange.record.received_at) * 1000)
    tail += event("metadata", {"metrics": {"latencyMs": latency}, "p": pad(3), "usage": usage})
    exchange.end("length" if plan.truncated else "completed", tail)


def _close_reasoning(seed: int) -> bytes:
    signature = {"reasoningContent": {"signature": f"sig_{uuid.uuid4().hex}"}}
    return event("contentBlockDelta", {"contentBlockIndex": 0, "delta": signature, "p": pad(seed)}) + event(
        "contentBlockStop", {"contentBlockIndex": 0, "p": pad(seed + 1)}
    )
