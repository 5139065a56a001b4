"""Event vocabulary of the chat dialect. A reply turn (kind ``chat_reply``) streams ``token``
events, then, when it planned an action, ``confirmation_required``, and last exactly one of
``done`` / ``cancelled`` / ``error``. An action turn (kind ``chat_action``) is never run by the
runtime: it waits in ``queued`` until confirm claims and executes it (``service.confirm``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from turnstop.core.events import PendingEvent
from turnstop.core.records import LedgerEntry
from turnstop.core.turn import Status, Turn, TurnEnd
from turnstop.providers.base import Message, ModelRequest
from turnstop.runtime.renderer import HISTORY_MAX_MESSAGES, Renderer, recent
from turnstop.store.chat import ChatMessage, message_item

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
    return PendingEvent("action.planned", {"thread_id": thread_of(turn), "type": action.get("type"),
                                           "summary": action.get("summary")})  # fmt: skip


def action_executed(turn: Turn) -> PendingEvent:
    return PendingEvent("action.executed", {"thread_id": thread_of(turn), "result": turn.input["action"]["result"]})


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
            return [PendingEvent("error", {"thread_id": thread_id, "error": error.get("code", "reply_failed"),
                                           "message": error.get("message", "The reply failed")})]  # fmt: skip
        question = (turn.input.get("action") or {}).get("confirmation")
        events = (
            [PendingEvent("confirmation_required", {"thread_id": thread_id, "message": question})] if question else []
        )
        return [*events, PendingEvent("done", {"thread_id": thread_id, "requires_confirmation": bool(question)})]

    def closing_items(self, turn: Turn, end: TurnEnd) -> list[dict[str, Any]]:
        """The assistant's message, in the seq its user message reserved for it: whatever the
        reply said before it ended (cancelled included). A reply finished by someone else than
        its request (a lost request) has no such note and leaves no message."""
        seq, expires_at = turn.input.get("assistant_seq"), turn.input.get("expires_at")
        if seq is None or expires_at is None or not end.text:
            return []
        at = end.finished_at if end.finished_at is not None else turn.created_at
        msg = ChatMessage(int(seq), "assistant", end.text, at)
        return [message_item(thread_of(turn), int(expires_at), msg, turn.id)]

    def ledger(self, turn: Turn, end: TurnEnd) -> list[LedgerEntry]:
        """The chat seed has no billing: its turns write no ledger entries."""
        return []


def after_finish(store: Store) -> Callable[[Turn, TurnEnd], None]:
    """The runner's after-finish hook for replies: the thread forgets a reply that has ended,
    unless it was cancelled (a repeated cancel still finds it, and answers the same)."""

    def hook(turn: Turn, end: TurnEnd) -> None:
        if turn.kind == REPLY_KIND and end.status is not Status.CANCELLED:
            store.chat.reply_ended(thread_of(turn), turn.id)

    return hook


RENDERER = ChatReplyRenderer()
RENDERERS: dict[str, Renderer] = {REPLY_KIND: RENDERER}
