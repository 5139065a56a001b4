"""The turn: one unit of cancellable work, its states and the five cancel outcomes.

Stored states are ``queued → running → completed | failed | incomplete | cancelled``.
"Cancelling" is not a state: it is ``running`` with ``cancel_requested_at`` set. A ``queued``
turn whose cancel flag is set is cancelled before it started (``cancelled_before_start``): no
worker can claim it (a claim requires the flag to be absent), so the cancel request stays one
conditional write. ``Turn.status`` reports that effective state, and the terminal time and
grace expiry follow from the flag.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from turnstop.core.scopes import Scope


class Status(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self not in (Status.QUEUED, Status.RUNNING)


TERMINAL_STATUSES = tuple(s for s in Status if s.terminal)


class CancelOutcome(enum.StrEnum):
    CANCELLED = "cancelled"  # was queued: cancelled at once, no work will start
    CANCELLING = "cancelling"  # was running: flag set, the worker stops at its next commit
    ALREADY_CANCELLING = "already_cancelling"  # running and flagged by an earlier request
    ALREADY_TERMINAL = "already_terminal"  # finished before this request (any terminal state)
    NOT_FOUND = "not_found"  # unknown, another tenant's or scope's, or past its grace window
    # A cancel of queued turns only (a chat action awaiting confirmation) found it running:
    # its confirmation won and the cancel changed nothing.
    ALREADY_STARTED = "already_started"

    @property
    def ends_cancelled(self) -> bool:
        """The turn is (or will be) cancelled: this request or an earlier one won."""
        return self in (CancelOutcome.CANCELLED, CancelOutcome.CANCELLING, CancelOutcome.ALREADY_CANCELLING)


@dataclass(frozen=True)
class CancelRequest:
    reason: str | None = None
    actor: str | None = None
    source: str = "api"
    batch: str | None = None  # the bulk cancel this request belongs to (its report's id)


@dataclass(frozen=True)
class Usage:
    """Tokens in and out; ``cached_tokens`` (of the input) and ``reasoning_tokens`` (of the
    output) where the provider gives them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_item(self) -> dict[str, int]:
        item = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cached_tokens is not None:
            item["cached_tokens"] = self.cached_tokens
        if self.reasoning_tokens is not None:
            item["reasoning_tokens"] = self.reasoning_tokens
        return item

    @classmethod
    def from_item(cls, raw: Any) -> Usage:
        raw = raw or {}
        cached, reasoning = raw.get("cached_tokens"), raw.get("reasoning_tokens")
        return cls(
            int(raw.get("input_tokens", 0)),
            int(raw.get("output_tokens", 0)),
            None if cached is None else int(cached),
            None if reasoning is None else int(reasoning),
        )


@dataclass(frozen=True)
class Turn:
    """A snapshot of a turn head as read from the store, with the effective state derived."""

    id: str
    kind: str
    tenant: str
    scope: Scope
    stored_status: Status
    created_at: int
    seq: int = 0
    grace_ms: int = 120_000
    end_user: str | None = None
    account_id: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    stored_expires_at: int | None = None
    cancel_requested_at: int | None = None
    cancel_reason: str | None = None
    cancel_actor: str | None = None
    cancel_source: str | None = None
    cancel_seq: int | None = None  # the committed seq when the cancel was accepted
    cancel_batch: str | None = None  # the bulk cancel that set the flag, if one did
    cancel_observed_at: int | None = None  # when the runtime saw the flag (set by the finish)
    deadline_at: int | None = None  # the caller's own deadline (Turnstop-Max-Duration)
    born_cancelled: bool = False  # created cancelled: a cancel by its Idempotency-Key came first
    lease_owner: str | None = None
    lease_expires_at: int | None = None
    usage: Usage = field(default_factory=Usage)
    input: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    # what the model provider used for this turn (the platform's cost, billed to nobody when
    # the turn was cancelled): tokens, ``estimated``, route, provider, model, ``cost_usd``
    upstream: dict[str, Any] | None = None

    def replace(self, **changes: Any) -> Turn:
        return dataclasses.replace(self, **changes)

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_requested_at is not None

    @property
    def cancelled_before_start(self) -> bool:
        """Cancelled while queued: no work ever started, and no worker has recorded it yet."""
        return self.stored_status is Status.QUEUED and self.cancel_requested

    @property
    def status(self) -> Status:
        return Status.CANCELLED if self.cancelled_before_start else self.stored_status

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def read_status(self) -> Status:
        """The status a read shows. A cancel accepted while the turn runs always ends it
        cancelled (the finish requires the flag absent for anything else), so from the cancel's
        answer on every read says ``cancelled``, before the runtime notices the flag and
        writes the end."""
        if self.stored_status is Status.RUNNING and self.cancel_requested:
            return Status.CANCELLED
        return self.status

    @property
    def completed_at(self) -> int | None:
        return self.cancel_requested_at if self.cancelled_before_start else self.finished_at

    @property
    def expires_at(self) -> int | None:
        if self.stored_expires_at is not None:
            return self.stored_expires_at
        done = self.completed_at
        return None if done is None else done + self.grace_ms

    @property
    def last_readable_seq(self) -> int:
        """The seq of the last event a reader can get now: a turn cancelled before it started
        ends with one event derived from the head, one past its seq."""
        return self.seq + (1 if self.cancelled_before_start else 0)

    def expired(self, now_ms: int) -> bool:
        """Past its grace window. Every read asks this; DynamoDB's TTL is only cleanup."""
        exp = self.expires_at
        return exp is not None and exp <= now_ms

    def past_deadline(self, now_ms: int) -> bool:
        """The caller's own deadline has passed: the runtime cancels the turn (source ``deadline``)."""
        return self.deadline_at is not None and self.deadline_at <= now_ms

    def lease_expired(self, now_ms: int) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at <= now_ms

    def visible_to(self, tenant: str, scope: Scope | None = None, end_user: str | None = None) -> bool:
        """Whether a caller may see this turn at all; anything else is ``not_found``."""
        if self.tenant != tenant:
            return False
        if scope is not None and self.scope != scope:
            return False
        if end_user is not None and self.end_user != end_user:
            return False
        return True


@dataclass(frozen=True)
class TurnEnd:
    """What the runtime knows when a turn ends; ``text`` is the committed output only."""

    status: Status
    usage: Usage
    text: str
    thinking: str = ""
    error: dict[str, str] | None = None
    finished_at: int | None = None  # epoch ms the store records as the terminal time
    asks: dict[str, Any] | None = None  # an action the turn's agent asks a person to approve (chat)


def outcome_from_conflict(
    old: Turn | None,
    now_ms: int,
    tenant: str,
    scope: Scope | None = None,
    end_user: str | None = None,
    only_queued: bool = False,
) -> CancelOutcome:
    """Why a cancel's conditional write failed, from the item it failed against (ALL_OLD).

    Pure, so races are decided the same way everywhere: the old item says who won.
    """
    if old is None or not old.visible_to(tenant, scope, end_user) or old.expired(now_ms):
        return CancelOutcome.NOT_FOUND
    if old.terminal:
        return CancelOutcome.ALREADY_TERMINAL
    if old.cancel_requested:
        return CancelOutcome.ALREADY_CANCELLING
    if only_queued and old.stored_status is Status.RUNNING:
        return CancelOutcome.ALREADY_STARTED
    # The condition is exactly "visible, in flight, unflagged": an old item that satisfies
    # it cannot have failed it.
    raise AssertionError(f"cancel of {old.id} failed against an item that meets its condition")


def outcome_from_success(old_status: Status) -> CancelOutcome:
    return CancelOutcome.CANCELLED if old_status is Status.QUEUED else CancelOutcome.CANCELLING


def final_status_after_lost_worker(turn: Turn) -> Status:
    """A running turn whose lease expired ends cancelled if a cancel was asked for, else failed."""
    return Status.CANCELLED if turn.cancel_requested else Status.FAILED
