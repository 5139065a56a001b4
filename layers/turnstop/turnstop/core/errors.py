"""Domain errors. Each dialect maps these classes (never their messages) to its own error shape.

The last three are not answers to a caller: they tell a service or the runtime what a
conditional write found instead of what it expected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from turnstop.core.turn import Turn


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


class IdempotencyExpired(TurnstopError):
    """An Idempotency-Key replayed after its turn's grace window: the turn finished and its
    answer is no longer kept, so the request cannot be replayed; use a new key."""


class RateLimited(TurnstopError):
    """Too many requests in the current window."""


class Retryable(TurnstopError):
    """Throttled or briefly unavailable backend; safe to retry (answers carry Retry-After)."""

    def __init__(self, message: str = "The service is briefly unavailable; retry shortly", **details: object) -> None:
        details.setdefault("retry_after", 1)
        super().__init__(message, **details)


class CommitRejected(Exception):
    """A claim, commit or finish was refused by its condition; ``old`` is the head it was
    refused against (None when the turn is gone). The head says why: a cancel, a lost lease,
    a turn already finished."""

    def __init__(self, old: Turn | None) -> None:
        super().__init__(old.id if old else "missing")
        self.old = old


class IdempotentReplay(Exception):
    """The Idempotency-Key was used before with the same request: here is that turn."""

    def __init__(self, turn_id: str) -> None:
        super().__init__(turn_id)
        self.turn_id = turn_id


class ExtraItemsRejected(Exception):
    """A dialect's own item in a turn's start transaction failed its condition; nothing was
    written. ``failed`` maps each failed item's name to the item it failed against (plain
    attributes, or None when absent)."""

    def __init__(self, failed: dict[str, dict[str, Any] | None]) -> None:
        super().__init__("condition failed: " + ", ".join(sorted(failed)))
        self.failed = failed
