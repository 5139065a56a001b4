"""Domain errors. Each dialect maps these classes (never their messages) to its own error shape."""

from __future__ import annotations


class TurnstopError(Exception):
    """Base for every domain error."""

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(TurnstopError):
    """Unknown, another tenant's, or past its grace window: all look the same to a caller."""


class Unauthenticated(TurnstopError):
    """Missing or unknown credential."""


class Forbidden(TurnstopError):
    """Known caller, not allowed to act for the named account."""


class InvalidRequest(TurnstopError):
    """Malformed input: bad JSON, wrong types, missing fields, malformed ids."""


class PayloadTooLarge(TurnstopError):
    """Body over the dialect's size limit."""


class Conflict(TurnstopError):
    """The request clashes with current state (a session already running a turn)."""


class IdempotencyMismatch(TurnstopError):
    """An Idempotency-Key reused with a different request body."""


class RateLimited(TurnstopError):
    """Too many requests in the current window."""


class Retryable(TurnstopError):
    """Throttled or briefly unavailable backend; safe to retry."""


class LeaseLost(TurnstopError):
    """The worker no longer owns the turn; it must stop without writing."""
