"""The llm dialect's wire, as its cancel function loads it (no pydantic): OpenAI's error shape,
the cancel-before-start answer and SSE framing (the models of these answers: ``answers``).

Errors: ``{"error": {"message", "type", "param", "code"}}``. A raise site may name the
offending parameter and a more specific code through the error's details
(``errors.InvalidRequest(msg, param="model", code="model_not_found")``); otherwise the code
follows from the status.
"""

from __future__ import annotations

import json
from typing import Any

from turnstop.core import errors
from turnstop.core.events import Event
from turnstop.http.body import BodyMessages
from turnstop.http.errors import ErrorInfo, ErrorShape

# (status, error type) per domain error class.
STATUS = {
    errors.InvalidRequest: (400, "invalid_request_error"),
    errors.Unauthenticated: (401, "invalid_request_error"),
    errors.Forbidden: (403, "permission_error"),
    errors.NotFound: (404, "invalid_request_error"),
    errors.Conflict: (409, "invalid_request_error"),
    errors.IdempotencyExpired: (410, "invalid_request_error"),
    errors.PayloadTooLarge: (413, "invalid_request_error"),
    errors.IdempotencyMismatch: (422, "invalid_request_error"),
    errors.RateLimited: (429, "rate_limit_error"),
    errors.Retryable: (503, "server_error"),
    errors.TurnstopError: (500, "server_error"),
}
CODES: dict[int, str | None] = {
    400: None,
    401: "invalid_api_key",
    403: "permission_denied",
    404: "not_found",
    409: "conflict",
    410: "idempotency_key_expired",
    413: "request_too_large",
    422: "idempotency_key_reused",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
    500: "server_error",
}


def error_body(info: ErrorInfo) -> dict[str, Any]:
    code = info.details.get("code", CODES.get(info.status))
    return {"error": {"message": info.message, "type": info.code, "param": info.details.get("param"), "code": code}}


SHAPE = ErrorShape(
    error_body,
    status=STATUS,
    internal_message="The server had an error while processing your request.",
    not_found_message="Unknown route",
    dialect="llm",
)

BODY_MESSAGES = BodyMessages(
    too_large="Request body is too large: the limit is {max} bytes.",
    empty="Request body is required: a JSON object with 'model' and 'input'.",
    malformed="We could not parse the JSON body of your request. Send a valid JSON object.",
    not_object="The request body must be a JSON object.",
    code="invalid_json",
)


def cancelled_before_start(key: str) -> dict[str, Any]:
    """A cancel by Idempotency-Key that no response has met yet (``answers.LlmCancelledBeforeStart``)."""
    return {"id": None, "object": "response", "status": "cancelled", "idempotency_key": key, "output": []}


def frame(ev: Event) -> str:
    """One SSE event: ``event:`` and a one-line ``data:`` with type and sequence_number; no ``id:``
    lines (openai's parser turns later keep-alive comments into empty events after one)."""
    data = {"type": ev.type, **ev.data, "sequence_number": ev.seq}
    return f"event: {ev.type}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"
