"""Event vocabulary of the sessions dialect: ``message.*`` for session turns, ``response.*``
for stateless ones. First ``<p>.created`` (data.id is the response id), then ``<p>.delta``,
last exactly one of ``<p>.completed`` / ``<p>.cancelled`` / ``<p>.failed``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from turnstop.core import billing
from turnstop.core.clock import iso
from turnstop.core.events import PendingEvent
from turnstop.core.records import LedgerEntry
from turnstop.core.turn import Status, Turn, TurnEnd, Usage
from turnstop.providers.base import Message, ModelRequest
from turnstop.runtime.renderer import Renderer, earlier_turns, recent

SESSION_KIND = "session"
STATELESS_KIND = "response"
PREFIX = {SESSION_KIND: "message", STATELESS_KIND: "response"}


def usage_body(u: Usage) -> dict[str, int]:
    return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "total_tokens": u.total_tokens}


def created_event(turn: Turn) -> PendingEvent:
    data: dict[str, Any] = {
        "id": turn.id,
        "object": PREFIX[turn.kind],
        "status": "queued",
        "created_at": iso(turn.created_at),
    }
    sid = turn.scope.session_id
    if sid:
        data["session_id"] = sid
    return PendingEvent(f"{PREFIX[turn.kind]}.created", data)


MAX_HISTORY_TURNS = 32  # how many earlier turns of a session its model is sent


def model_request(turn: Turn, store: Any) -> ModelRequest:
    """A session turn's request: the session's earlier turns (each one's message and reply,
    oldest first, followed back from the turn this one follows) as the conversation."""
    base = Renderer.model_request(SessionsRenderer(SESSION_KIND), turn, store)
    earlier = [
        [Message("user", str(head.input.get("prompt", ""))), Message("assistant", store.turns.committed_text(head))]
        for head in earlier_turns(store, turn, "previous_turn", MAX_HISTORY_TURNS)
    ]
    history = [m for pair in reversed(earlier) for m in pair if m.content]
    return replace(base, history=recent(history))


class SessionsRenderer(Renderer):
    def __init__(self, kind: str) -> None:
        self.prefix = PREFIX[kind]

    def model_request(self, turn: Turn, store: Any) -> ModelRequest:
        return model_request(turn, store) if turn.input.get("previous_turn") else super().model_request(turn, store)

    def on_delta(self, turn: Turn, text: str, kind: str) -> list[PendingEvent]:
        return [PendingEvent(f"{self.prefix}.delta", {"id": turn.id, "delta": text})]

    def on_end(self, turn: Turn, outcome: TurnEnd) -> list[PendingEvent]:
        name = {Status.COMPLETED: "completed", Status.CANCELLED: "cancelled"}.get(outcome.status, "failed")
        data: dict[str, Any] = {
            "id": turn.id,
            "status": name,
            "usage": usage_body(outcome.usage),
            "billed": outcome.status is Status.COMPLETED,
        }
        if outcome.status is Status.CANCELLED:
            data["cancel"] = {"reason": turn.cancel_reason, "source": turn.cancel_source}
        if outcome.error:
            data["error"] = outcome.error
        return [PendingEvent(f"{self.prefix}.{name}", data)]

    def ledger(self, turn: Turn, end: TurnEnd) -> list[LedgerEntry]:
        """The seed: "Cancelled streams skip the post-stream usage record + credit debit". The
        usage at stop rides on the ``…cancelled`` event for the client instead."""
        if end.status is Status.CANCELLED:
            return []
        return billing.ledger_for(end.status, end.usage)


RENDERERS: dict[str, Renderer] = {
    SESSION_KIND: SessionsRenderer(SESSION_KIND),
    STATELESS_KIND: SessionsRenderer(STATELESS_KIND),
}
