"""The chat dialect's wire: its error shape (the seed's ``{"error": <code>, "message": ...}``),
its answer bodies and its SSE framing.

A raise site may name a more specific code than its class's through the error's details
(``errors.Conflict(msg, code="nothing_to_cancel")``).
"""

from __future__ import annotations

import json
from typing import Any

from turnstop.core import errors
from turnstop.core.clock import iso
from turnstop.core.events import Event
from turnstop.http.errors import ErrorInfo, ErrorShape


class CancellationFailed(errors.TurnstopError):
    """The store failed while a cancel was being written (the seed's 500); nothing changed."""


class ProviderFailed(errors.TurnstopError):
    """The identity provider could not be reached, or answered something unusable."""


class SignInRefused(errors.InvalidRequest):
    """A sign-in callback that cannot complete (replayed or unknown state, refused code)."""


class InvalidIdToken(errors.Unauthenticated):
    """The provider's ID token failed verification (signature, issuer, audience, expiry, nonce)."""


STATUS = {
    errors.InvalidRequest: (400, "invalid_request"),
    errors.Unauthenticated: (401, "not_authenticated"),
    InvalidIdToken: (401, "invalid_token"),
    errors.Forbidden: (403, "forbidden"),
    errors.NotFound: (404, "not_found"),
    errors.Conflict: (409, "conflict"),
    errors.PayloadTooLarge: (413, "payload_too_large"),
    errors.RateLimited: (429, "rate_limited"),
    ProviderFailed: (502, "identity_provider_error"),
    errors.Retryable: (503, "unavailable"),
    CancellationFailed: (500, "cancellation_error"),
    errors.TurnstopError: (500, "internal_error"),
}


def error_body(info: ErrorInfo) -> dict[str, Any]:
    return {"error": str(info.details.get("code", info.code)), "message": info.message}


SHAPE = ErrorShape(
    error_body, status=STATUS, internal_message="Internal server error", not_found_message="Not found", dialect="chat"
)

CANCELLED_RESPONSE = "Action cancelled."


def chat_answer(thread_id: str, text: str, confirmation: str | None) -> dict[str, Any]:
    """``POST /chat``: the reply, and the question when it planned an action."""
    body: dict[str, Any] = {"response": text, "thread_id": thread_id, "requires_confirmation": confirmation is not None}
    if confirmation is not None:
        body["confirmation_message"] = confirmation
    return body


def cancel_answer(thread_id: str) -> dict[str, Any]:
    """The seed's answer, exactly: the same for a first cancel and for every repeat."""
    return {"thread_id": thread_id, "status": "cancelled", "response": CANCELLED_RESPONSE, "cancelled": True}


def confirm_answer(thread_id: str, result: str) -> dict[str, Any]:
    return {"thread_id": thread_id, "status": "confirmed", "response": result, "confirmed": True}


def thread_body(thread_id: str, messages: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"thread_id": thread_id, "messages": messages, "actions": actions}


def message_body(role: str, content: str, created_at: int) -> dict[str, Any]:
    return {"role": role, "content": content, "created_at": iso(created_at)}


def action_body(
    action_id: str, type_: str, summary: str, status: str, created_at: int, decided_at: int | None
) -> dict[str, Any]:
    return {
        "id": action_id,
        "type": type_,
        "summary": summary,
        "status": status,
        "created_at": iso(created_at),
        "decided_at": iso(decided_at),
    }


def wire_event(ev: Event) -> tuple[str, dict[str, Any]]:
    """The seed's event name and data for a stored event. Output deltas are stored as
    ``token.delta`` (the ``*.delta`` convention every dialect's stored output follows) and
    sent as the seed's ``token``."""
    if ev.type == "token.delta":
        return "token", {"thread_id": ev.data["thread_id"], "text": ev.data["delta"]}
    return ev.type, ev.data


def frame(ev: Event) -> str:
    """One SSE event as the seed shows it: ``event: <name>`` and ``data: {"event_type": <name>,
    "data": {...}}`` (no ``id:``; the chat stream has no resume)."""
    name, data = wire_event(ev)
    payload = json.dumps({"event_type": name, "data": data}, separators=(",", ":"), ensure_ascii=False)
    return f"event: {name}\ndata: {payload}\n\n"
