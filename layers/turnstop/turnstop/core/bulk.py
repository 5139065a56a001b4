"""Bulk cancels: what a scoped cancel asks for, and how each turn it met is counted.

A bulk cancel names a scope (a tenant, narrowed by an account, a session, a thread and an end
user) and optionally ``created_before``; every in-flight turn of the scope gets the same single
conditional cancel write as a single cancel. Its report counts each turn it matched once:
``cancelled`` (this bulk cancel set the flag), ``already_finished`` (finished, or already
stopping because of an earlier cancel) or ``failed`` (the write kept failing). A page that is
processed again (a redelivered message) recognises its own earlier writes by the flag's
``cancel_batch`` and counts them the same way, so ``matched = cancelled + already_finished +
failed`` holds whatever is retried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from turnstop.core import errors
from turnstop.core.clock import iso
from turnstop.core.turn import CancelOutcome, Turn

MAX_FIELD = 256
MAX_REASON = 1000
SCOPE_FIELDS = ("tenant", "account_id", "session_id", "thread_id", "end_user")
REQUEST_FIELDS = ("scope", "created_before", "reason", "actor")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")

CANCELLED, ALREADY_FINISHED, FAILED = "cancelled", "already_finished", "failed"


@dataclass(frozen=True)
class BulkScope:
    """Whose in-flight turns: a tenant's, narrowed by any of the others (all must match)."""

    tenant: str
    account_id: int | None = None
    session_id: str | None = None
    thread_id: str | None = None
    end_user: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k in SCOPE_FIELDS if (v := getattr(self, k)) is not None}


@dataclass(frozen=True)
class BulkRequest:
    scope: BulkScope
    created_before: int | None = None  # epoch ms: only turns created before this
    reason: str | None = None
    actor: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scope": self.scope.to_json()}
        if self.created_before is not None:
            out["created_before"] = iso(self.created_before)
        for name in ("reason", "actor"):
            if (value := getattr(self, name)) is not None:
                out[name] = value
        return out


def _text(obj: dict[str, Any], name: str, limit: int = MAX_FIELD) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise errors.InvalidRequest(f"Invalid field '{name}': expected a non-empty string")
    if len(value) > limit:
        raise errors.InvalidRequest(f"Invalid field '{name}': at most {limit} characters")
    return value


def parse_time(raw: Any, name: str = "created_before") -> int:
    """An RFC 3339 timestamp with its offset (``2026-11-23T02:04:29Z``) as epoch ms."""
    if not isinstance(raw, str) or not _RFC3339.fullmatch(raw):
        raise errors.InvalidRequest(f"Invalid field '{name}': expected an RFC 3339 time such as 2026-11-23T02:04:29Z")
    try:
        at = datetime.fromisoformat(raw.upper().replace(" ", "T"))
    except ValueError:
        raise errors.InvalidRequest(f"Invalid field '{name}': not a valid time") from None
    return int(at.astimezone(UTC).timestamp() * 1000)


def parse_request(obj: Any, *, caller_tenant: str | None = None) -> BulkRequest:
    """A bulk cancel's body (HTTP) or message (queue). ``caller_tenant``: an HTTP caller's own
    tenant, the default of ``scope.tenant`` and the only one it may name (another is
    ``Forbidden``). A queue message must name its tenant. Unknown fields, a scope that names
    nothing, and a session together with a thread are ``InvalidRequest``."""
    if not isinstance(obj, dict):
        raise errors.InvalidRequest("The body must be a JSON object")
    if unknown := sorted(set(obj) - set(REQUEST_FIELDS)):
        raise errors.InvalidRequest(f"Unknown field '{unknown[0]}'")
    raw = obj.get("scope")
    if not isinstance(raw, dict):
        raise errors.InvalidRequest("Invalid field 'scope': expected an object naming the turns to stop")
    if unknown := sorted(set(raw) - set(SCOPE_FIELDS)):
        raise errors.InvalidRequest(f"Unknown field 'scope.{unknown[0]}'")
    if not raw:
        raise errors.InvalidRequest(
            "The scope names nothing: name the tenant (every in-flight turn of it), or an account_id, "
            "session_id, thread_id or end_user"
        )
    tenant = _text(raw, "tenant", 128)
    if caller_tenant is not None and tenant is not None and tenant != caller_tenant:
        raise errors.Forbidden("A key may stop only its own tenant's turns")
    tenant = tenant or caller_tenant
    if tenant is None:
        raise errors.InvalidRequest("Invalid field 'scope.tenant': required")
    account = raw.get("account_id")
    if account is not None and (isinstance(account, bool) or not isinstance(account, int) or account < 0):
        raise errors.InvalidRequest("Invalid field 'scope.account_id': expected a non-negative integer")
    scope = BulkScope(tenant, account, _text(raw, "session_id"), _text(raw, "thread_id"), _text(raw, "end_user"))
    if scope.session_id is not None and scope.thread_id is not None:
        raise errors.InvalidRequest(
            "A turn belongs to a session or to a thread: name session_id or thread_id, not both"
        )
    before = obj.get("created_before")
    return BulkRequest(
        scope,
        None if before is None else parse_time(before),
        _text(obj, "reason", MAX_REASON),
        _text(obj, "actor"),
    )


def classify(outcome: CancelOutcome, turn: Turn | None, batch: str) -> str:
    """How a bulk cancel counts one turn's cancel write. A flag this bulk cancel set earlier
    (a page processed again) still counts as ``cancelled``."""
    if outcome in (CancelOutcome.CANCELLED, CancelOutcome.CANCELLING):
        return CANCELLED
    if turn is not None and turn.cancel_batch == batch:
        return CANCELLED
    return ALREADY_FINISHED


@dataclass
class Counts:
    matched: int = 0
    cancelled: int = 0
    already_finished: int = 0
    failed: int = 0
    turn_ids: dict[str, list[str]] = field(default_factory=dict, compare=False)

    def add(self, turn_id: str, category: str) -> None:
        self.matched += 1
        setattr(self, category, getattr(self, category) + 1)
        self.turn_ids.setdefault(category, []).append(turn_id)

    def to_json(self) -> dict[str, int]:
        return {
            "matched": self.matched,
            "cancelled": self.cancelled,
            "already_finished": self.already_finished,
            "failed": self.failed,
        }
