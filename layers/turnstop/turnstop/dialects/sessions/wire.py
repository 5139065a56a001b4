"""The sessions dialect's wire, as its cancel functions load it (no pydantic): its error shape
and the cancel's answer, plain dicts of the models in ``answers``.

The seed shows no error body; the documented choice is
``{"error": {"type": "<code>", "message": "...", "request_id": "..."}}``.
"""

from __future__ import annotations

from typing import Any

from turnstop.core.turn import CancelOutcome
from turnstop.http.errors import ErrorInfo, ErrorShape


def error_body(info: ErrorInfo) -> dict[str, Any]:
    return {"error": {"type": info.code, "message": info.message, "request_id": info.request_id}}


SHAPE = ErrorShape(error_body, dialect="sessions")


def cancel_answer(rid: str, outcome: CancelOutcome) -> tuple[int, dict[str, Any]]:
    """The seed's table: 202 cancelling while in flight (a second cancel before the turn has
    stopped too), 200 already_complete once finished."""
    if outcome.ends_cancelled:
        return 202, {"response_id": rid, "status": "cancelling"}
    return 200, {"response_id": rid, "status": "already_complete"}
