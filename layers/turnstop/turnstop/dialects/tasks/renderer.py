"""Event vocabulary of task turns, and what a task writes when it ends.

Events (kept for the record and for the output text; tasks are read by polling, not streamed):
``task.created`` (seq 1), one ``task.output.delta`` per model chunk, and last exactly one of
``task.succeeded`` / ``task.failed`` / ``task.cancelled``.

The finishing transaction also writes, each once: the ``refund`` ledger entry (``ledger``) and,
when the task has a callback URL, the callback's outbox item (``closing_items``); the worker's
after-finish hook then queues its delivery (``callbacks.after_finish``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from turnstop.core.events import PendingEvent
from turnstop.core.records import LedgerEntry
from turnstop.core.turn import Status, Turn, TurnEnd, Usage
from turnstop.dialects.tasks import pricing
from turnstop.runtime.renderer import Renderer
from turnstop.store.callbacks import REDRIVE_AFTER_MS, outbox_item

KIND = "task"
ID_PREFIX = "task_"
CREATED = "task.created"
DELTA = "task.output.delta"
# internal status → the seed's status (a task cut at its max_output_tokens has succeeded)
WIRE_STATUS = {
    Status.QUEUED: "queued",
    Status.RUNNING: "running",
    Status.COMPLETED: "succeeded",
    Status.INCOMPLETE: "succeeded",
    Status.FAILED: "failed",
    Status.CANCELLED: "cancelled",
}
TERMINAL_EVENT = {s: f"task.{w}" for s, w in WIRE_STATUS.items() if s.terminal}


def created_event(turn: Turn) -> PendingEvent:
    return PendingEvent(CREATED, {"task_id": turn.id, "status": "queued"})


def event_id(turn: Turn) -> str:
    """The id of the task's one terminal callback event (receivers dedupe by it)."""
    return "evt_" + turn.id.removeprefix(ID_PREFIX)


def charged(turn: Turn) -> Decimal:
    return Decimal(str(turn.input["charged_credits"]))


def refund_of(turn: Turn, status: Status, end_usage: Usage) -> tuple[Decimal, Decimal]:
    """(earned, refunded) for a task that ended in ``status`` with ``end_usage``."""
    kept = pricing.earned(pricing.price_of(turn), end_usage, charged(turn), WIRE_STATUS[status] == "succeeded")
    return kept, charged(turn) - kept


class TaskRenderer(Renderer):
    # The cancel answer shows the output so far: a cancelled task ends with exactly that output.
    output_at_cancel_acceptance = True

    def on_delta(self, turn: Turn, text: str, kind: str) -> list[PendingEvent]:
        if kind != "text" or not text:
            return []
        return [PendingEvent(DELTA, {"delta": text})]

    def on_end(self, turn: Turn, end: TurnEnd) -> list[PendingEvent]:
        earned, refunded = refund_of(turn, end.status, end.usage)
        data = {
            "task_id": turn.id,
            "status": WIRE_STATUS[end.status],
            "usage": end.usage.to_item(),
            "earned_credits": pricing.amount(earned),
            "refunded_credits": pricing.amount(refunded),
        }
        return [PendingEvent(TERMINAL_EVENT[end.status], data)]

    def ledger(self, turn: Turn, end: TurnEnd) -> list[LedgerEntry]:
        """The refund, written with the terminal state (the charge was written at creation)."""
        earned, refunded = refund_of(turn, end.status, end.usage)
        return [
            LedgerEntry(
                "refund",
                {
                    "credits": pricing.amount(refunded),
                    "credits_usd_reference": pricing.amount(pricing.usd(refunded)),
                    "earned_credits": pricing.amount(earned),
                    "status": WIRE_STATUS[end.status],
                    **end.usage.to_item(),
                },
            )
        ]

    def closing_items(self, turn: Turn, end: TurnEnd) -> list[dict[str, Any]]:
        url = turn.input.get("callback_url")
        if not url:
            return []
        at = end.finished_at if end.finished_at is not None else turn.created_at
        return [
            outbox_item(
                turn,
                url=str(url),
                event_id=event_id(turn),
                event_type=TERMINAL_EVENT[end.status],
                at=at,
                redrive_at=at + REDRIVE_AFTER_MS,
                expires_at=at + turn.grace_ms,
            )
        ]


RENDERER = TaskRenderer()
RENDERERS: dict[str, Renderer] = {KIND: RENDERER}
