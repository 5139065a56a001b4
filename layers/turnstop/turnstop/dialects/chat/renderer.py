"""Event vocabulary of the chat dialect. A reply turn (kind ``chat_reply``) streams ``token``
events, then, when it planned an action, ``confirmation_required``, and last exactly one of
``done`` / ``cancelled`` / ``error``. An action turn (kind ``chat_action``) is never run by the
runtime: it waits in ``queued`` until confirm claims and executes it (``service.confirm``).

An action is planned with its message (the scripted agent reads it), or asked for by the reply's
own agent (``WorkerTurn.request_approval``, an external route): then the reply's finish writes
the action (``closing_items``), in the slot its message reserved, in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from turnstop.core.events import PendingEvent
from turnstop.core.records import LedgerEntry, NewTurn
from turnstop.core.turn import Status, Turn, TurnEnd
from turnstop.providers.base import Message, ModelRequest
from turnstop.runtime.renderer import HISTORY_MAX_MESSAGES, Renderer, recent
from turnstop.store.chat import ActionRecord, ChatMessage, action_record_item, message_item
from turnstop.store.heads import queued_turn_items

if TYPE_CHECKING:
    from turnstop.store import Store

REPLY_KIND = "chat_reply"
ACTION_KIND = "chat_action"


def thread_of(turn: Turn) -> str:
    return turn.scope.key


def reply_created(turn: Turn) -> PendingEvent:
    """The reply's first stored event (not sent: the seed's stream starts with its tokens)."""
    return PendingEvent("reply.created", {"thread_id": thread_of(turn)})


def action_planned(turn: Turn) -> PendingEvent:
    action = turn.input.get("action") or {}
    return PendingEvent(
        "action.planned", {"thread_id": thread_of(turn), "type": action.get("type"), "summary": action.get("summary")}
    )


def action_executed(turn: Turn, result: str) -> PendingEvent:
    return PendingEvent("action.executed", {"thread_id": thread_of(turn), "result": result})


def model_request(turn: Turn, store: Any) -> ModelRequest:
    """The thread's messages before this reply's (its own user message is the input)."""
    base = Renderer.model_request(ChatReplyRenderer(), turn, store)
    upto = int(turn.input.get("assistant_seq") or 0) - 1  # this turn's user message
    messages = store.chat.messages_before(thread_of(turn), upto, 2 * HISTORY_MAX_MESSAGES)
    history = [Message("user" if m.role == "user" else "assistant", m.content) for m in messages]
    return replace(base, history=recent([m for m in history if m.content]))


class ChatReplyRenderer(Renderer):
    def model_request(self, turn: Turn, store: Any) -> ModelRequest:
        return model_request(turn, store)

    def on_delta(self, turn: Turn, text: str, kind: str) -> list[PendingEvent]:
        return [PendingEvent("token.delta", {"thread_id": thread_of(turn), "delta": text})]

    def on_end(self, turn: Turn, end: TurnEnd) -> list[PendingEvent]:
        thread_id = thread_of(turn)
        if end.status is Status.CANCELLED:
            return [PendingEvent("cancelled", {"thread_id": thread_id, "status": "cancelled"})]
        if end.status is not Status.COMPLETED:
            error = end.error or {"code": "reply_failed", "message": "The reply failed"}
            return [
                PendingEvent(
                    "error",
                    {
                        "thread_id": thread_id,
                        "error": error.get("code", "reply_failed"),
                        "message": error.get("message", "The reply failed"),
                    },
                )
            ]
        question = (turn.input.get("action") or {}).get("confirmation") or (asked(turn, end) or {}).get("confirmation")
        events = (
            [PendingEvent("confirmation_required", {"thread_id": thread_id, "message": question})] if question else []
        )
        return [*events, PendingEvent("done", {"thread_id": thread_id, "requires_confirmation": bool(question)})]

    def closing_items(self, turn: Turn, end: TurnEnd) -> list[dict[str, Any]]:
        """The assistant's message, in the seq its user message reserved for it: whatever the
        reply said before it ended (cancelled included). A reply finished by someone else than
        its request (a lost request) has no such note and leaves no message."""
        seq, expires_at = turn.input.get("assistant_seq"), turn.input.get("expires_at")
        if seq is None or expires_at is None:
            return []
        at = end.finished_at if end.finished_at is not None else turn.created_at
        msg = ChatMessage(int(seq), "assistant", end.text, at)
        items = [message_item(thread_of(turn), int(expires_at), msg, turn.id)] if end.text else []
        asks = asked(turn, end)
        if asks is not None:
            items += asked_action_items(turn, asks, int(expires_at), at)
        return items

    def ledger(self, turn: Turn, end: TurnEnd) -> list[LedgerEntry]:
        """The chat seed has no billing: its turns write no ledger entries."""
        return []


def asked(turn: Turn, end: TurnEnd) -> dict[str, Any] | None:
    """The action the reply's agent asked a person to approve, if it finished asking one in the
    slot its message reserved."""
    slot = turn.input.get("asks_slot")
    return end.asks if slot and end.asks and end.status is Status.COMPLETED else None


def asked_action_items(turn: Turn, asks: dict[str, Any], expires_at: int, now: int) -> list[dict[str, Any]]:
    """The action an agent asked for, written by its reply's finish: the action turn (queued,
    never swept: only a confirmation starts it) and the record that lists it in its thread."""
    slot = turn.input["asks_slot"]
    details = {**asks, "result": None, "agent": True}
    new = NewTurn(
        id=str(slot["id"]),
        kind=ACTION_KIND,
        tenant=turn.tenant,
        scope=turn.scope,
        grace_ms=turn.grace_ms,
        end_user=turn.end_user,
        swept=False,
        input={
            "action": details,
            "outcome_seq": int(slot["outcome_seq"]),
            "expires_at": expires_at,
            "prompt": turn.input.get("prompt", ""),
        },
    )
    record = ActionRecord(new.id, int(slot["outcome_seq"]), str(asks["type"]), str(asks["summary"]), now)
    return [*queued_turn_items(new, action_planned, now), action_record_item(thread_of(turn), expires_at, record)]


def after_finish(store: Store) -> Callable[[Turn, TurnEnd], None]:
    """The runner's after-finish hook for replies: the thread forgets a reply that has ended,
    unless it was cancelled (a repeated cancel still finds it, and answers the same)."""

    def hook(turn: Turn, end: TurnEnd) -> None:
        if turn.kind == REPLY_KIND and end.status is not Status.CANCELLED:
            store.chat.reply_ended(thread_of(turn), turn.id)

    return hook


RENDERER = ChatReplyRenderer()
RENDERERS: dict[str, Renderer] = {REPLY_KIND: RENDERER}
