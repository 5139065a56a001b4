"""A turn this request runs, as a service hands it to the handler that streams it, and the one
wait a reader's cursor may need before it reads the store (``caught_up``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from turnstop.core.events import Event
from turnstop.core.turn import Turn
from turnstop.runtime.active import LiveChannel
from turnstop.store import Store

__all__ = ["LiveTurn", "caught_up"]


@dataclass(frozen=True)
class LiveTurn:
    """A turn running under this request's runner: its first reader reads ``channel`` (the
    events ``first``, then each as it is emitted) while ``running`` runs it."""

    turn: Turn
    channel: LiveChannel
    running: threading.Thread
    first: tuple[Event, ...] = ()


def caught_up(
    store: Store,
    turn: Turn,
    after: int,
    within_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Turn | None:
    """The turn once a reader's cursor is within what is readable, or None if it never is.

    A live reader gets events before they are durable, so a reconnecting client's cursor may
    be ahead of the committed seq of a running turn for up to one flush interval: wait that
    long (bounded) for the store to catch up. A cursor past the end of a finished turn, or
    still ahead after the wait, is not one this turn ever handed out."""
    deadline = monotonic() + within_s
    head: Turn | None = turn
    while head is not None and after > head.last_readable_seq:
        if head.terminal or monotonic() >= deadline:
            return None
        sleep(0.05)
        head = store.turns.head(turn.id)
    return None if head is None else head.replace(input=turn.input)
