"""Who finishes a turn, and what a finish writes besides the head.

Exactly one finish wins per turn: its condition names the state it leaves. ``MyLease``: the
worker running it; ``LostLease``: a redelivered message after the worker's lease expired;
``NeverStarted``: a turn cancelled while queued, recorded by whoever sees it next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from turnstop.core.events import Event
from turnstop.core.records import LedgerEntry
from turnstop.core.turn import Status


@dataclass(frozen=True)
class MyLease:
    """The worker running the turn finishes it under its own lease."""

    owner: str


@dataclass(frozen=True)
class LostLease:
    """A redelivered message finishes a turn whose worker's lease expired (at ``expired_at``)."""

    expired_at: int


@dataclass(frozen=True)
class NeverStarted:
    """A turn cancelled while queued is recorded as cancelled; no work ever ran."""


FinishMode = MyLease | LostLease | NeverStarted


def finish_condition(mode: FinishMode, status: Status, now: int) -> tuple[str, dict[str, Any]]:
    """The head's condition for leaving the state ``mode`` names. Completion and failure also
    require the cancel flag to be absent, so a cancel accepted with 202 always ends cancelled."""
    unflagged = "" if status is Status.CANCELLED else " AND attribute_not_exists(cancel_requested_at)"
    match mode:
        case MyLease(owner):
            return "status = :running AND lease_owner = :owner AND seq = :base" + unflagged, {
                "running": Status.RUNNING.value,
                "owner": owner,
            }
        case LostLease(expired_at):
            cond = "status = :running AND lease_expires_at = :lease AND lease_expires_at <= :now AND seq = :base"
            return cond + unflagged, {"running": Status.RUNNING.value, "lease": expired_at, "now": now}
        case NeverStarted():
            return "status = :queued AND attribute_exists(cancel_requested_at) AND seq = :base", {
                "queued": Status.QUEUED.value
            }
    raise AssertionError(mode)


@dataclass(frozen=True)
class Closing:
    """What a finish writes besides the head: the events not yet committed followed by the
    closing ones (the last is the terminal event; seqs follow the head's), ledger entries and
    a dialect's once-per-turn items (plain dicts, put if absent)."""

    events: list[Event]
    ledger: list[LedgerEntry]
    items: list[dict[str, Any]]
    closing: int = 1  # how many of ``events`` (the last ones) are the closing events
    output: str = ""  # the turn's whole visible output (stored by reference in closing events)
    upstream: dict[str, Any] | None = None  # the provider's usage and cost (Turn.upstream)


def record_upstream(db: Any, turn_id: str, upstream: dict[str, Any]) -> None:
    """Replace the estimate of a cancelled turn's upstream cost with the provider's own number,
    which came after the turn ended (a provider that reports usage when cancelled). One small
    conditional write; nothing else of the finished turn changes."""
    from turnstop.store import codec
    from turnstop.store.codec import TURN_SK, turn_pk

    db.conditional(
        "update_item",
        Key=codec.key(turn_pk(turn_id), TURN_SK),
        UpdateExpression="SET upstream = :upstream",
        ConditionExpression="attribute_exists(upstream) AND status = :cancelled",
        ExpressionAttributeValues=codec.values(upstream=codec.compact_json(upstream), cancelled=Status.CANCELLED.value),
    )
