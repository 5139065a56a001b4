"""The toy dialect's wire: its error shape and its cancel answer."""

from __future__ import annotations

from typing import Any

from turnstop.core.turn import CancelOutcome
from turnstop.http.errors import ErrorInfo, ErrorShape


def error_body(info: ErrorInfo) -> dict[str, Any]:
    return {"toy_error": {"code": info.code, "says": info.message, "request": info.request_id}}


SHAPE = ErrorShape(error_body, dialect="toy")


def cancel_answer(turn_id: str, outcome: CancelOutcome) -> tuple[int, dict[str, Any]]:
    return (202 if outcome is CancelOutcome.CANCELLING else 200), {"id": turn_id, "outcome": outcome.value}
