"""How a dialect names and shapes a turn's events. The runtime is generic: whoever runs turns
(the worker, a streaming function) is handed the renderers of the dialects it serves, by turn
kind, so the right vocabulary is written (``message.cancelled``, ``response.cancelled`` with
the final object, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from turnstop.core import billing
from turnstop.core.events import Event, PendingEvent
from turnstop.core.records import LedgerEntry
from turnstop.core.turn import Status, Turn, TurnEnd
from turnstop.providers.base import Message, ModelRequest

SAMPLING_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", "stop")
# How much of a conversation the model is sent: its last messages, at most this many characters
# (oldest dropped first), so a long omni or chat thread never outgrows a model's context or a turn's start.
HISTORY_MAX_MESSAGES = 64
HISTORY_MAX_CHARS = 200_000


def earlier_turns(store: Any, turn: Turn, link: str, limit: int) -> list[Turn]:
    """The turns a chain of ids leads back to from ``turn`` (``turn.input[link]``, then each
    earlier turn's own), newest first, with their requests: the same tenant and kind only, at
    most ``limit`` (one Query each, and one for its output; once per turn, never per step)."""
    found: list[Turn] = []
    earlier = turn.input.get(link)
    while earlier and len(found) < limit:
        head = store.turns.get(earlier)  # the head and its request, one Query
        if head is None or head.tenant != turn.tenant or head.kind != turn.kind:
            break
        found.append(head)
        earlier = head.input.get(link)
    return found


def recent(history: list[Message]) -> tuple[Message, ...]:
    """The newest messages of ``history`` within the limits, in order."""
    kept: list[Message] = []
    size = 0
    for m in reversed(history[-HISTORY_MAX_MESSAGES:]):
        size += len(m.content)
        if size > HISTORY_MAX_CHARS:
            break
        kept.append(m)
    return tuple(reversed(kept))


class Renderer:
    """A dialect's event vocabulary and what its turns write when they end. ``on_delta`` and
    ``on_end`` are required; the rest have defaults."""

    # A dialect whose cancel answer shows the output (the llm's response object) ends a
    # cancelled turn with exactly the output committed when the cancel was accepted, so the
    # answer and the final state agree; others keep what was emitted until the cancel was seen.
    output_at_cancel_acceptance: bool = False

    def model_request(self, turn: Turn, store: Any) -> ModelRequest:
        """What the model is asked: the turn's input, its instructions and output cap, the
        sampling fields the dialect carries. Dialects with a conversation add its history."""
        i = turn.input
        cap = i.get("max_output_tokens")
        sampling = {k: i[k] for k in SAMPLING_FIELDS if i.get(k) is not None}
        return ModelRequest(
            input=str(i.get("prompt", "")),
            instructions=i.get("instructions") or None,
            max_output_tokens=cap if isinstance(cap, int) else None,
            sampling=sampling,
        )

    def on_start(self, turn: Turn) -> list[PendingEvent]:
        """Events written when a worker starts the turn."""
        return []

    def on_delta(self, turn: Turn, text: str, kind: str) -> list[PendingEvent]:
        """Events for one model chunk (``kind`` is ``text`` or ``thinking``)."""
        raise NotImplementedError

    def on_end(self, turn: Turn, end: TurnEnd) -> list[PendingEvent]:
        """The closing events; the last one is the terminal event."""
        raise NotImplementedError

    def closing_items(self, turn: Turn, end: TurnEnd) -> list[dict[str, Any]]:
        """Items the dialect writes once, with the terminal state, in the same transaction
        (plain dicts, put if absent), e.g. an omni thread's final assistant message."""
        return []

    def ledger(self, turn: Turn, end: TurnEnd) -> list[LedgerEntry]:
        """The ledger entries written with the terminal state (each once). The seeds decide
        per dialect; the default is ``core.billing.ledger_for``."""
        return billing.ledger_for(end.status, end.usage)


Renderers = Mapping[str, Renderer]


def derived_terminal(renderer: Renderer, turn: Turn) -> list[Event]:
    """The closing events of a turn cancelled before it started, as the worker will write
    them, at the same seqs: readers serve them before any worker has recorded the cancel."""
    closing = renderer.on_end(turn, TurnEnd(Status.CANCELLED, turn.usage, ""))
    return [Event(turn.seq + i + 1, e.type, e.data) for i, e in enumerate(closing)]
