"""The sessions dialect's wire: its error shape and its answer bodies.

The seed shows no error body; the documented choice is
``{"error": {"type": "<code>", "message": "...", "request_id": "..."}}``.
"""

from __future__ import annotations

from typing import Any

from turnstop.core.clock import iso
from turnstop.core.records import Session
from turnstop.core.turn import CancelOutcome
from turnstop.http.errors import ErrorInfo, ErrorShape


def error_body(info: ErrorInfo) -> dict[str, Any]:
    return {"error": {"type": info.code, "message": info.message, "request_id": info.request_id}}


SHAPE = ErrorShape(error_body, dialect="sessions")


def session_body(s: Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "object": "session",
        "persistent": s.persistent,
        "created_at": iso(s.created_at),
        "expires_at": iso(s.expires_at),
    }


def cancel_answer(rid: str, outcome: CancelOutcome) -> tuple[int, dict[str, Any]]:
    """The seed's table: 202 cancelling while in flight (a second cancel before the turn has
    stopped too), 200 already_complete once finished."""
    if outcome.ends_cancelled:
        return 202, {"response_id": rid, "status": "cancelling"}
    return 200, {"response_id": rid, "status": "already_complete"}
