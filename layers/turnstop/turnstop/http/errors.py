"""One exception→response map for every dialect and every route, streaming ones included.

A dialect describes its error shape once (``ErrorShape``): a body function that receives the
error as ``ErrorInfo`` (status, code, message, request id and the raise site's details, so the
llm's ``param``/``code`` fit), its status table, and any extra headers. Domain errors are
mapped by class (walking the MRO), never by message text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from turnstop.core import errors

log = logging.getLogger(__name__)

StatusTable = Mapping[type[errors.TurnstopError], tuple[int, str]]

# (status, error code) per domain error class; a dialect may override entries.
DEFAULT_STATUS: StatusTable = {
    errors.InvalidRequest: (400, "invalid_request"),
    errors.Unauthenticated: (401, "unauthorized"),
    errors.Forbidden: (403, "forbidden"),
    errors.NotFound: (404, "not_found"),
    errors.Conflict: (409, "conflict"),
    errors.PayloadTooLarge: (413, "payload_too_large"),
    errors.IdempotencyMismatch: (422, "idempotency_key_reused"),
    errors.IdempotencyExpired: (410, "idempotency_key_expired"),
    errors.RateLimited: (429, "rate_limited"),
    errors.Retryable: (503, "unavailable"),
    errors.TurnstopError: (500, "internal_error"),
}


@dataclass(frozen=True)
class ErrorInfo:
    status: int
    code: str
    message: str
    request_id: str
    details: Mapping[str, Any] = field(default_factory=dict)


def _no_headers(status: int) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class ErrorShape:
    body: Callable[[ErrorInfo], dict[str, Any]]
    status: StatusTable = field(default_factory=lambda: dict(DEFAULT_STATUS))
    headers: Callable[[int], dict[str, str]] = _no_headers
    internal_message: str = "Internal server error"
    not_found_message: str = "Not found"
    dialect: str | None = None  # the ``dialect`` key of every log line of a request it answers

    def status_for(self, exc: errors.TurnstopError) -> tuple[int, str]:
        for cls in type(exc).__mro__:
            if cls in self.status:
                return self.status[cls]
        return 500, "internal_error"

    def describe(self, exc: BaseException, request_id: str) -> ErrorInfo:
        """What an exception answers: a domain error by its class, anything else a 500
        (logged with the request id; the caller never sees a traceback)."""
        if isinstance(exc, errors.TurnstopError):
            status, code = self.status_for(exc)
            return ErrorInfo(status, code, exc.message or code, request_id, exc.details)
        log.error("unhandled error, request %s", request_id, exc_info=exc)
        status, code = self.status_for(errors.TurnstopError())
        return ErrorInfo(status, code, self.internal_message, request_id)

    def retry_after(self, info: ErrorInfo) -> dict[str, str]:
        seconds = info.details.get("retry_after")
        return {"Retry-After": str(seconds)} if seconds is not None else {}
