"""What OpenAI-compatible servers share on the wire: error bodies, SSE framing, request ids."""

from __future__ import annotations

import json
import uuid
from typing import Any

from turnstop_local.fake_upstream.behaviour import Fail
from turnstop_local.fake_upstream.exchange import Exchange

# (type, code, message) of OpenAI's error JSON per status.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Request not allowed."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    408: ("timeout", None, "Request timed out."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

SSE_HEADERS = [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache")]
GARBAGE = b"<html><body><h1>502 Bad Gateway</h1> not the protocol {\n"


def error_body(
    status: int, message: str | None = None, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    kind, default_code, default_message = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
    )
    return {
        "error": {"message": message or default_message, "type": kind, "param": param, "code": code or default_code}
    }


def request_id() -> tuple[str, str]:
    return ("x-request-id", f"req_{uuid.uuid4().hex}")


def fail(exchange: Exchange, failure: Fail) -> None:
    """Answer with ``failure`` as OpenAI does: its error JSON (or the raw body), ``retry-after``."""
    extra = [request_id()]
    if failure.retry_after is not None:
        extra.append(("retry-after", f"{failure.retry_after:g}"))
        extra.append(("retry-after-ms", str(int(failure.retry_after * 1000))))
    if failure.body is not None:
        exchange.answer(failure.status, failure.body, "application/json", extra)
        return
    exchange.answer_json(failure.status, error_body(failure.status, failure.message, failure.code), extra)


def garbage(exchange: Exchange, stream: bool) -> None:
    """A 200 whose body is not the protocol."""
    if stream:
        if exchange.send_headers(200, [*SSE_HEADERS, request_id()], chunked=True):
            exchange.end("garbage", b"data: " + GARBAGE + b"\n")
        return
    exchange.answer(200, GARBAGE, "application/json", [request_id()])


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event; ``data`` as compact JSON (a str is sent as is)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def text_of(content: Any) -> list[str]:
    """The texts of a message's content: a string, or a list of parts with ``text``."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def refused(exchange: Exchange, failure: Fail | None, behaviour: Any, stream: bool) -> bool:
    """Answer a request its behaviour refuses before any output (an error before the stream, or
    garbage); True when it was answered so."""
    if failure is not None and behaviour.fail_after is None:
        fail(exchange, failure)
        return True
    if behaviour.garbage:
        garbage(exchange, stream)
        return True
    return False
