"""A running turn's in-memory state, shared by the model's Python thread, the keeper (the one
Python thread that writes the turn to the store) and the live reader.

The model's thread only ever touches memory: ``emit`` numbers the events, hands them to the
live reader at once and queues them for the keeper to make durable. When the keeper ends the
turn (a cancel, a deadline) it sets ``stopping``; the model's next ``emit`` raises
``TurnStopping`` and its thread lets go.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

from turnstop.core.events import Event, PendingEvent
from turnstop.core.tokens import count_tokens
from turnstop.core.turn import Status, Turn, Usage
from turnstop.providers.base import ModelCall, ProviderUsage
from turnstop.store.chunks import chunk_bytes


class TurnStopping(Exception):
    """The turn is ending (cancelled, out of time): the model must stop producing."""


@dataclass(frozen=True)
class ModelEnd:
    """Why the model's thread stopped producing."""

    status: Status
    error: dict[str, str] | None = None
    usage: ProviderUsage | None = None  # the provider's own count, when it gave one
    asks: dict[str, Any] | None = None  # an action the agent asks a person to approve (chat)


END = object()  # what the live channel carries after the terminal event
DETACHED = object()  # ... or when this runtime lost the turn: follow the store from here


class LiveChannel:
    """Events for the reader of the request that runs the turn, in order, as they happen."""

    def __init__(self) -> None:
        self._q: queue.Queue[Any] = queue.Queue()

    def put(self, events: list[Event]) -> None:
        if events:
            self._q.put(events)

    def close(self, detached: bool = False) -> None:
        self._q.put(DETACHED if detached else END)

    def get(self, timeout: float) -> Any:
        """The next list of events, END, DETACHED, or None when nothing came within ``timeout``."""
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None


@dataclass(frozen=True)
class Snapshot:
    """What has been emitted but not yet made durable, and the output up to its end."""

    events: list[Event]
    usage: Usage
    text: str
    thinking: str
    bytes: int


class ActiveTurn:
    def __init__(self, turn: Turn, live: LiveChannel | None = None) -> None:
        self._lock = threading.Lock()
        self.turn = turn  # its seq and usage: what is durable
        self.live = live
        self._next_seq = turn.seq + 1
        self._pending: list[
            tuple[Event, int, int, int]
        ] = []  # event, output tokens, text and thinking lengths after it
        self._bytes = 0
        self.text = ""
        self.thinking = ""
        self.output_tokens = turn.usage.output_tokens
        self.durable_text = ""
        self.durable_thinking = ""
        self.stopping = False
        self.model_end: ModelEnd | None = None
        self.call: ModelCall | None = None  # the model call in flight: a stop aborts it
        self.opened: ModelCall | None = None  # the model call, kept after it ended
        self.input_estimate: int | None = None  # what the request sends the model, estimated
        self.wake = threading.Event()  # the keeper looks now (model ended, a flush is due)

    @property
    def usage(self) -> Usage:
        """Everything emitted so far."""
        return Usage(self.turn.usage.input_tokens, self.output_tokens)

    @property
    def produced_tokens(self) -> int:
        return self.output_tokens

    # -- the model's thread

    def emit(
        self, events: list[PendingEvent], text: str = "", kind: str = "text", *, flush_bytes: int = 1 << 30
    ) -> None:
        with self._lock:
            if self.stopping:
                raise TurnStopping
            if kind == "thinking":
                self.thinking += text
            else:
                self.text += text
                self.output_tokens += count_tokens(text)
            numbered = [Event(self._next_seq + i, e.type, e.data) for i, e in enumerate(events)]
            self._next_seq += len(numbered)
            for e in numbered:
                self._pending.append((e, self.output_tokens, len(self.text), len(self.thinking)))
            self._bytes += chunk_bytes(numbered)
            if self.live is not None:
                self.live.put(numbered)
            due = self._bytes >= flush_bytes
        if due:
            self.wake.set()

    def attach(self, call: ModelCall) -> None:
        """The model's call is open: a stop from now on aborts it (a stop already made: now)."""
        with self._lock:
            stopping = self.stopping
            if not stopping:
                self.call = self.opened = call
        if stopping:
            call.abort()
            raise TurnStopping

    def model_ended(self, end: ModelEnd) -> None:
        with self._lock:
            if self.model_end is None:
                self.model_end = end
        self.wake.set()

    # -- the keeper

    def pending(self, upto: int | None = None) -> Snapshot:
        """The events not yet durable (those with seq <= ``upto``), and the output up to them."""
        with self._lock:
            kept = [p for p in self._pending if upto is None or p[0].seq <= upto]
            if not kept:
                return Snapshot([], self.turn.usage, self.durable_text, self.durable_thinking, 0)
            _, tokens, text_len, thinking_len = kept[-1]
            events = [p[0] for p in kept]
            usage = Usage(self.turn.usage.input_tokens, tokens)
            return Snapshot(events, usage, self.text[:text_len], self.thinking[:thinking_len], chunk_bytes(events))

    def published(self, snap: Snapshot) -> None:
        """The snapshot's events are durable now."""
        if not snap.events:
            return
        last = snap.events[-1].seq
        with self._lock:
            self._pending = [p for p in self._pending if p[0].seq > last]
            self._bytes = chunk_bytes(p[0] for p in self._pending)
            self.turn = self.turn.replace(seq=last, usage=snap.usage)
            self.durable_text, self.durable_thinking = snap.text, snap.thinking

    def durable_upto(self, seq: int) -> None:
        """Events up to ``seq`` turned out durable: a write whose answer was lost had landed."""
        self.published(self.pending(seq))

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    def stop(self) -> int:
        """Stop the model: its call is aborted (the upstream connection closed, whatever phase it
        is in) and its next emit raises. Returns the next seq to number events with."""
        with self._lock:
            self.stopping = True
            call = self.call if self.model_end is None else None
            self.call = None
            after = self._next_seq
        if call is not None:
            call.abort()
        return after

    def closing_seqs(self, after: int, events: list[PendingEvent]) -> list[Event]:
        return [Event(after + 1 + i, e.type, e.data) for i, e in enumerate(events)]
