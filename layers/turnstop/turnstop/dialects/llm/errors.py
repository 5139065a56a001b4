"""The llm dialect's error shape, OpenAI's: ``{"error": {"message", "type", "param", "code"}}``.

Domain errors are mapped by class; a raise site may name the offending parameter and a more
specific code through the error's details (``errors.InvalidRequest(msg, param="model",
code="model_not_found")``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from turnstop.core import errors
from turnstop.http.api import request_id, status_for

log = logging.getLogger(__name__)

# (status, error type) per domain error class; the default code follows in CODES.
STATUS: dict[type[errors.TurnstopError], tuple[int, str]] = {
    errors.InvalidRequest: (400, "invalid_request_error"),
    errors.Unauthenticated: (401, "invalid_request_error"),
    errors.Forbidden: (403, "permission_error"),
    errors.NotFound: (404, "invalid_request_error"),
    errors.Conflict: (409, "invalid_request_error"),
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
    413: "request_too_large",
    422: "idempotency_key_reused",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
    500: "server_error",
}


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def describe(exc: Exception) -> tuple[int, dict[str, Any]]:
    """The status and OpenAI-shaped body for any exception (unexpected ones are a 500)."""
    if isinstance(exc, errors.TurnstopError):
        status, type_ = status_for(exc, STATUS)
        details: Mapping[str, Any] = exc.details
        code = details.get("code", CODES.get(status))
        return status, error_body(exc.message or type_, type_, details.get("param"), code)
    return 500, error_body(
        "The server had an error while processing your request.", "server_error", None, "server_error"
    )


def error_headers(event: Mapping[str, Any]) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Request-Id": request_id(event)}


def error_json(exc: Exception, event: Mapping[str, Any]) -> tuple[int, str, dict[str, str]]:
    if not isinstance(exc, errors.TurnstopError):
        log.exception("unhandled error, request %s", request_id(event))
    status, body = describe(exc)
    return status, json.dumps(body, separators=(",", ":")), error_headers(event)
