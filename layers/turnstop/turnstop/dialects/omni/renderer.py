"""Event vocabulary of omni turns, and the ASSISTANT message each turn leaves in its thread.

Events: ``omni.response.created`` (seq 1), then ``omni.thought`` (thinking) and
``omni.text.delta`` (visible text) while running, last exactly one of
``omni.response.succeeded`` / ``omni.response.failed`` / ``omni.response.canceled``.

The ASSISTANT message is written by the worker in the turn's terminal transaction
(``closing_items``). A queued turn cancelled before any worker ran has no such write yet, so
readers derive it from the head with the same function: both give the identical record.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from turnstop.core.events import PendingEvent
from turnstop.core.turn import Status, Turn, TurnEnd
from turnstop.providers.base import Message, ModelRequest
from turnstop.runtime.renderer import HISTORY_MAX_MESSAGES, Renderer, recent
from turnstop.store.omni_threads import OmniMessage, message_items

OMNI_KIND = "omni"
CREATED = "omni.response.created"
TEXT_DELTA = "omni.text.delta"
THOUGHT = "omni.thought"  # deliberately not ``*.delta``: only visible text counts as output

# internal turn status → the wire's Response.status
WIRE_STATUS = {
    Status.QUEUED: "queued",
    Status.RUNNING: "running",
    Status.COMPLETED: "succeeded",
    Status.FAILED: "failed",
    Status.INCOMPLETE: "failed",
    Status.CANCELLED: "canceled",
}
# terminal status → OmniMessage.outcome
MESSAGE_OUTCOME = {
    Status.COMPLETED: "completed",
    Status.FAILED: "errored",
    Status.INCOMPLETE: "errored",
    Status.CANCELLED: "canceled",
}


def created_event(turn: Turn) -> PendingEvent:
    return PendingEvent(
        CREATED,
        {
            "id": turn.id,
            "status": "queued",
            "thread_id": turn.input.get("thread_id"),
            "user_message_id": turn.input.get("user_message_id"),
        },
    )


def text_parts(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}] if text else []


def wire_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    if not error:
        return None
    return {"code": str(error.get("code", "error")), "message": str(error.get("message", ""))}


def assistant_message(turn: Turn, status: Status, text: str, error: dict[str, Any] | None) -> OmniMessage:
    """The final ASSISTANT message of a turn. Deterministic in the head, so a reader's
    derived copy and the worker's record are the same (created_at: when work began, or when
    the turn was accepted if it never began)."""
    inp = turn.input
    return OmniMessage(
        id=inp["assistant_message_id"],
        thread_id=inp["thread_id"],
        seq=int(inp["user_seq"]) + 1,
        role="ASSISTANT",
        parts=text_parts(text),
        outcome=MESSAGE_OUTCOME[status],
        created_at=turn.started_at if turn.started_at is not None else turn.created_at,
        response_id=turn.id,
        error=wire_error(error) if status is not Status.CANCELLED else None,
    )


def assistant_items(turn: Turn, status: Status, text: str, error: dict[str, Any] | None) -> list[dict[str, Any]]:
    return message_items(
        assistant_message(turn, status, text, error),
        tenant=turn.tenant,
        account_id=int(turn.account_id or 0),
        expires_at=int(turn.input["thread_expires_at"]),
    )


def model_request(turn: Turn, store: Any) -> ModelRequest:
    """The thread's earlier messages (before this turn's user message) as the history."""
    base = Renderer.model_request(OmniRenderer(), turn, store)
    seq = int(turn.input.get("user_seq") or 0)
    lo = max(0, seq - 1 - HISTORY_MAX_MESSAGES)  # only the newest messages are ever sent
    earlier = store.omni_threads.messages(turn.input["thread_id"], lo, seq - 1) if seq > 1 else []
    history = [
        Message("user" if m.role == "USER" else "assistant", "".join(p.get("text", "") for p in m.parts))
        for m in earlier
    ]
    return replace(base, history=recent([m for m in history if m.content]))


class OmniRenderer(Renderer):
    # A read after the cancel's answer shows the turn canceled with the output committed then;
    # the turn ends with exactly that output, so the read and the final state agree.
    output_at_cancel_acceptance = True

    def model_request(self, turn: Turn, store: Any) -> ModelRequest:
        return model_request(turn, store)

    def on_delta(self, turn: Turn, text: str, kind: str) -> list[PendingEvent]:
        if kind == "thinking":
            return [PendingEvent(THOUGHT, {"thought": text})]
        return [PendingEvent(TEXT_DELTA, {"delta": text})]

    def on_end(self, turn: Turn, outcome: TurnEnd) -> list[PendingEvent]:
        wire = WIRE_STATUS[outcome.status]
        data: dict[str, Any] = {
            "id": turn.id,
            "status": wire,
            "output_message_id": turn.input.get("assistant_message_id"),
            "usage": outcome.usage.to_item(),
        }
        if outcome.error and outcome.status is not Status.CANCELLED:
            data["error"] = wire_error(outcome.error)
        return [PendingEvent(f"omni.response.{wire}", data)]

    def closing_items(self, turn: Turn, outcome: TurnEnd) -> list[dict[str, Any]]:
        return assistant_items(turn, outcome.status, outcome.text, outcome.error)


RENDERERS: dict[str, Renderer] = {OMNI_KIND: OmniRenderer()}
