"""What every dialect's service shares: starting a turn (and queueing it) with one rule for
idempotent replays (``idempotency/replay.py``)."""

from __future__ import annotations

from collections.abc import Callable

from turnstop.auth import Principal
from turnstop.core import errors
from turnstop.core.turn import Turn
from turnstop.idempotency.bindings import KeyBinding
from turnstop.idempotency.replay import replayed_turn
from turnstop.platform.settings import Settings
from turnstop.store import Store

Enqueue = Callable[[Turn, KeyBinding | None], None]


class DialectService:
    """A dialect's operations on the shared core. Subclasses add the dialect's verbs."""

    def __init__(self, store: Store, settings: Settings, enqueue: Enqueue | None = None) -> None:
        self.store = store
        self.settings = settings
        self.enqueue = enqueue or store.queue.enqueue

    def start(
        self,
        write: Callable[[], Turn],
        principal: Principal,
        idempotency: KeyBinding | None,
        *,
        queue: bool = True,
    ) -> tuple[Turn, bool]:
        """Write a new turn with ``write`` and queue it for a worker (unless the request runs
        it itself: ``queue=False``). Returns (turn, replayed): a repeated Idempotency-Key with
        the same request gives back the turn it started. A turn born cancelled (its key was
        cancelled before it started) is always queued: nothing runs it, the worker records
        its end, and the request answers with its stream or state (``cancelled_before_start``)."""
        try:
            turn = write()
        except errors.IdempotentReplay as replay:
            return replayed_turn(self.store, replay.turn_id, principal), True
        if queue or turn.cancelled_before_start:
            self.enqueue(turn, idempotency)
        return turn, False
