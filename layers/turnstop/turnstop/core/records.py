"""Domain records the store reads and writes besides turns: new turns, sessions, credentials
and ledger entries. Plain data, no I/O. (An Idempotency-Key's binding is ``idempotency/bindings.py``.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from turnstop.core.scopes import Scope


@dataclass
class NewTurn:
    id: str
    kind: str
    tenant: str
    scope: Scope
    grace_ms: int
    input: dict[str, Any] = field(default_factory=dict)
    end_user: str | None = None
    account_id: int | None = None
    input_tokens: int = 0  # known when the turn is created (the prompt); output tokens come from the worker
    # Key attributes of a dialect's own index the head carries from its creation (the tasks
    # list: gsi3pk/gsi3sk). Never values a step's commit changes, so commits write no index copy.
    index_keys: dict[str, str] = field(default_factory=dict)
    # The caller's own limit (Turnstop-Max-Duration): past it the runtime cancels the turn.
    max_duration_ms: int | None = None
    # The thread a turn belongs to when its scope does not name it (an omni response), so a
    # bulk cancel of that thread finds it in the live index.
    thread_id: str | None = None
    # In the sweeper's in-flight index while queued or running (a lost message is re-sent to a
    # worker). False for a turn only a person may start: a chat action awaiting confirmation
    # must never be run by a worker, however long it waits (its items are kept for its grace).
    swept: bool = True
    # Keep its request even when it runs in the request that started it: later turns send it to
    # the model as the conversation so far (an llm response a previous_response_id may name).
    keep_request: bool = False


@dataclass(frozen=True)
class LedgerEntry:
    kind: str  # "usage" or "debit"
    data: dict[str, Any]


@dataclass(frozen=True)
class Session:
    id: str
    tenant: str
    persistent: bool
    created_at: int
    expires_at: int
    active_turn: str | None
    deleted: bool
    end_user: str | None = None  # the X-On-Behalf-Of user who created it, if any
    last_turn: str | None = None  # the session's latest turn (the one before a new turn's)

    def live(self, tenant: str, now_ms: int, end_user: str | None = None) -> bool:
        """Usable by this caller now: the tenant's, not deleted or expired, and (when the
        caller acts for an end user) that end user's."""
        mine = end_user is None or self.end_user == end_user
        return self.tenant == tenant and mine and not self.deleted and self.expires_at > now_ms


@dataclass(frozen=True)
class Credential:
    tenant: str
    account_ids: tuple[int, ...]
    key_id: str
    name: str = ""
    admin: bool = False  # may use the operators' endpoints (POST /v1/admin/cancels) for its tenant
