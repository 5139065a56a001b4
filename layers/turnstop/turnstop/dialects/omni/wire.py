"""The omni dialect's wire: the seed's error shape and the SDK's bodies.

Errors, exactly as the seed shows them:
``{"error": {"code": <HTTP status>, "message": "..."}, "metadata": {"request_id": "..."}}``.
The seed's messages are reproduced verbatim; 409s carry ``x-should-retry: false`` so the
official SDK (which retries 409 by default) does not resend a rejected turn. Every success
body is the SDK's envelope ``{"data": ..., "metadata": {"request_id": ...}}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from turnstop.core.clock import iso
from turnstop.core.events import Event
from turnstop.core.turn import Status, Turn
from turnstop.dialects.omni.renderer import TEXT_DELTA, THOUGHT, WIRE_STATUS, text_parts, wire_error
from turnstop.http.errors import ErrorInfo, ErrorShape
from turnstop.store.omni_threads import OmniMessage, OmniThread

MISSING_ACCOUNT = "Failed to deserialize query string: missing field `account_id`"
FORBIDDEN = "The caller does not have permission to execute the specified operation"
RESPONSE_NOT_FOUND = "Response not found"
THREAD_NOT_FOUND = "Thread not found"
QUERY_PREFIX = "Failed to deserialize query string: "
BODY_PREFIX = "Failed to deserialize the JSON body into the target type: "


def error_body(info: ErrorInfo) -> dict[str, Any]:
    return {"error": {"code": info.status, "message": info.message}, "metadata": {"request_id": info.request_id}}


def extra_headers(status: int) -> dict[str, str]:
    return {"x-should-retry": "false"} if status == 409 else {}


SHAPE = ErrorShape(error_body, headers=extra_headers, dialect="omni")


def envelope(data: Any, request_id: str, **meta: Any) -> dict[str, Any]:
    return {"data": data, "metadata": {"request_id": request_id, **meta}}


def thread_body(t: OmniThread) -> dict[str, Any]:
    return {"id": t.id, "created_at": iso(t.created_at), "title": t.title, "updated_at": iso(t.updated_at)}


def message_body(m: OmniMessage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": m.id,
        "content": {"parts": [p for p in m.parts if p.get("type") != "thinking"]},
        "created_at": iso(m.created_at),
        "outcome": m.outcome,
        "role": m.role,
        "seq": m.seq,
        "thread_id": m.thread_id,
    }
    if m.context is not None:
        body["context"] = m.context
    if m.error is not None:
        body["error"] = m.error
    return body


def response_body(turn: Turn, events: Iterable[Event]) -> dict[str, Any]:
    """The pollable response: parts from the committed events only (partial while running; a
    turn whose cancel was accepted ends with exactly these, see ``OmniRenderer``)."""
    thoughts: list[str] = []
    text: list[str] = []
    for ev in events:
        if ev.type == THOUGHT:
            thoughts.append(str(ev.data.get("thought", "")))
        elif ev.type == TEXT_DELTA:
            text.append(str(ev.data.get("delta", "")))
    parts: list[dict[str, Any]] = []
    if thoughts:
        parts.append({"type": "thinking", "thoughts": ["".join(thoughts)]})
    parts.extend(text_parts("".join(text)))
    status = turn.read_status  # ``canceled`` from an accepted cancel on, as its DELETE answered
    body: dict[str, Any] = {
        "id": turn.id,
        "status": WIRE_STATUS[status],
        "thread_id": turn.input["thread_id"],
        "user_message_id": turn.input["user_message_id"],
        "content": {"parts": parts},
    }
    if status.terminal:
        body["output_message_id"] = turn.input["assistant_message_id"]
    if status in (Status.FAILED, Status.INCOMPLETE):
        body["error"] = wire_error(turn.error) or {"code": "error", "message": "The response failed"}
    return body
