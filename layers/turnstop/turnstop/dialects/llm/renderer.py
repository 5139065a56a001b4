"""Event vocabulary of the llm dialect: OpenAI's Responses streaming events.

A turn of kind ``llm`` writes ``response.created`` (at create, status ``queued``), then when a
worker starts it ``response.in_progress``, ``response.output_item.added``,
``response.content_part.added``, one ``response.output_text.delta`` per model chunk, and last
exactly one terminal event: ``response.completed`` (after ``output_text.done``,
``content_part.done`` and ``output_item.done``), ``response.cancelled``, ``response.failed`` or
``response.incomplete``, each carrying the full response object.

Stored event data carries neither ``type`` nor ``sequence_number``: readers add both when they
frame an event (``sequence_number`` is the event's seq in the turn's buffer, starting at 1).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from turnstop.core.events import PendingEvent
from turnstop.core.turn import Status, Turn, TurnEnd, Usage
from turnstop.providers.base import Message, ModelRequest
from turnstop.runtime.renderer import Renderer, earlier_turns, recent

KIND = "llm"
DELTA = "response.output_text.delta"
TERMINAL = {
    Status.COMPLETED: "response.completed",
    Status.CANCELLED: "response.cancelled",
    Status.FAILED: "response.failed",
    Status.INCOMPLETE: "response.incomplete",
}
TERMINAL_TYPES = frozenset(TERMINAL.values())
WIRE_STATUS = {
    Status.QUEUED: "queued",
    Status.RUNNING: "in_progress",
    Status.COMPLETED: "completed",
    Status.FAILED: "failed",
    Status.INCOMPLETE: "incomplete",
    Status.CANCELLED: "cancelled",
}


def message_id(turn: Turn) -> str:
    """The output message's id, derived from the response id so every event agrees on it."""
    return "msg_" + turn.id[5:]


def usage_body(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens or 0, "cache_write_tokens": 0},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens or 0},
        "total_tokens": u.total_tokens,
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message(turn: Turn, status: str, text: str | None) -> dict[str, Any]:
    """The assistant message; its status is in_progress, completed or incomplete."""
    content = [] if text is None else [text_part(text)]
    return {"id": message_id(turn), "type": "message", "role": "assistant", "status": status, "content": content}


# Defaults as the seed's response object shows them.
DEFAULT_MAX_TOOL_CALLS = 30


def response_object(
    turn: Turn,
    status: str,
    *,
    text: str = "",
    usage: Usage | None = None,
    error: dict[str, Any] | None = None,
    completed_at: int | None = None,
) -> dict[str, Any]:
    """The full response object (every key present, as both SDKs require)."""
    i = turn.input
    output: list[dict[str, Any]] = []
    if status == "completed":
        output = [message(turn, "completed", text)]
    elif text:
        output = [message(turn, "in_progress" if status == "in_progress" else "incomplete", text)]
    body: dict[str, Any] = {
        "id": turn.id,
        "object": "response",
        "created_at": turn.created_at // 1000,
        "status": status,
        "background": bool(i.get("background", False)),
        "completed_at": completed_at,
        "error": error,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": i.get("instructions"),
        "max_output_tokens": i.get("max_output_tokens"),
        "max_tool_calls": i.get("max_tool_calls") or DEFAULT_MAX_TOOL_CALLS,
        "metadata": i.get("metadata") or {},
        "model": i.get("model", ""),
        "output": output,
        "output_text": text,
        "parallel_tool_calls": i.get("parallel_tool_calls", True),
        "previous_response_id": i.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": i.get("service_tier") or "auto",
        "store": i.get("store", True),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": i.get("tool_choice") or "auto",
        "tools": [],
        "truncation": i.get("truncation") or "auto",
        "usage": usage_body(usage if usage is not None else turn.usage),
        "user": i.get("user"),
    }
    # Sampling settings are echoed only when the request set them (the seed's object has none).
    for name in ("temperature", "top_p"):
        if i.get(name) is not None:
            body[name] = float(i[name])
    return body


def wire_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """A runtime error as the response's ``error`` (code from OpenAI's vocabulary)."""
    if not error:
        return None
    return {"code": "server_error", "message": str(error.get("message") or "The response failed")}


def created_event(turn: Turn) -> PendingEvent:
    return PendingEvent("response.created", {"response": response_object(turn, "queued")})


MAX_HISTORY_RESPONSES = 64  # how far a previous_response_id chain is followed back


def model_request(turn: Turn, store: Any) -> ModelRequest:
    """The response's request to the model: its instructions, the conversation of its
    ``previous_response_id`` chain (oldest first: each earlier response's input messages and
    its output), its own earlier input messages, the last user message as the input."""
    base = Renderer.model_request(LlmRenderer(), turn, store)
    history: list[Message] = []
    for head in reversed(earlier_turns(store, turn, "previous_response_id", MAX_HISTORY_RESPONSES)):
        reply = store.turns.committed_text(head)
        history.extend([*_messages(head.input), *([Message("assistant", reply)] if reply else [])])
    own = _messages(turn.input)
    system = [m["content"] for m in turn.input.get("messages") or () if m["role"] in ("system", "developer")]
    instructions = "\n\n".join([*([base.instructions] if base.instructions else []), *system]) or None
    if own and own[-1].role == "user":
        history.extend(own[:-1])
        return replace(base, input=own[-1].content, history=recent(history), instructions=instructions)
    return replace(base, history=recent(history), instructions=instructions)


def _messages(request: dict[str, Any]) -> list[Message]:
    """A stored request's user and assistant messages, in order (a plain input: one user message)."""
    stored = request.get("messages")
    if not stored:
        prompt = str(request.get("prompt", ""))
        return [Message("user", prompt)] if prompt else []
    return [Message(m["role"], m["content"]) for m in stored if m["role"] in ("user", "assistant") and m["content"]]


class LlmRenderer(Renderer):
    # The cancel answer is the cancelled response object: the turn ends with exactly that output.
    output_at_cancel_acceptance = True

    def model_request(self, turn: Turn, store: Any) -> ModelRequest:
        return model_request(turn, store)

    def on_start(self, turn: Turn) -> list[PendingEvent]:
        ref = {"item_id": message_id(turn), "output_index": 0, "content_index": 0}
        return [
            PendingEvent("response.in_progress", {"response": response_object(turn, "in_progress")}),
            PendingEvent("response.output_item.added", {"output_index": 0, "item": message(turn, "in_progress", None)}),
            PendingEvent("response.content_part.added", {**ref, "part": text_part("")}),
        ]

    def on_delta(self, turn: Turn, text: str, kind: str) -> list[PendingEvent]:
        if kind != "text" or not text:
            return []
        ref = {"item_id": message_id(turn), "output_index": 0, "content_index": 0}
        return [PendingEvent(DELTA, {**ref, "delta": text, "logprobs": []})]

    def on_end(self, turn: Turn, outcome: TurnEnd) -> list[PendingEvent]:
        status = WIRE_STATUS[outcome.status]
        done_at = outcome.finished_at // 1000 if outcome.status is Status.COMPLETED and outcome.finished_at else None
        final = response_object(
            turn, status, text=outcome.text, usage=outcome.usage, error=wire_error(outcome.error), completed_at=done_at
        )
        closing: list[PendingEvent] = []
        if outcome.status is Status.COMPLETED:
            ref = {"item_id": message_id(turn), "output_index": 0, "content_index": 0}
            closing = [
                PendingEvent("response.output_text.done", {**ref, "text": outcome.text, "logprobs": []}),
                PendingEvent("response.content_part.done", {**ref, "part": text_part(outcome.text)}),
                PendingEvent("response.output_item.done", {"output_index": 0, "item": final["output"][0]}),
            ]
        return [*closing, PendingEvent(TERMINAL.get(outcome.status, "response.failed"), {"response": final})]


RENDERER = LlmRenderer()
RENDERERS: dict[str, Renderer] = {KIND: RENDERER}
