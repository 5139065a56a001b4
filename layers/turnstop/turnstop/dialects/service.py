"""What every dialect's service shares: starting a turn (and queueing it) with one rule for
idempotent replays, and finding a turn the caller may see."""

from __future__ import annotations

from collections.abc import Callable

from turnstop.auth import Principal
from turnstop.core import errors
from turnstop.core.records import IdempotencyClaim
from turnstop.core.turn import Status, Turn
from turnstop.platform.settings import Settings
from turnstop.store import Store

# A replay re-sends the message of a turn still queued this long after its creation (the
# first attempt may have stopped between writing the turn and queueing it); concurrent
# replays send at most one message per interval (a conditional write decides).
RESEND_AFTER_MS = 10_000
RESEND_AGAIN_AFTER_MS = 60_000

Enqueue = Callable[[Turn, IdempotencyClaim | None], None]


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
        idempotency: IdempotencyClaim | None,
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
            return self.replay(replay.turn_id, principal), True
        if queue or turn.cancelled_before_start:
            self.enqueue(turn, idempotency)
        return turn, False

    def replay(self, turn_id: str, principal: Principal) -> Turn:
        """The turn an Idempotency-Key started, the same way in every dialect: while it is
        kept, as it stands now (a still-queued turn whose message looks lost is re-sent,
        once); once past its grace window, ``IdempotencyExpired``."""
        turn = self.store.turns.get(turn_id)
        if turn is None or turn.expired(self.store.now()):
            raise errors.IdempotencyExpired(
                "The turn started with this Idempotency-Key has finished and is no longer kept; "
                "send the request with a new Idempotency-Key"
            )
        if not turn.visible_to(principal.tenant, end_user=principal.end_user):
            raise errors.IdempotencyMismatch("Idempotency-Key was already used with a different request")
        self._resend_if_stalled(turn)
        return turn

    def _resend_if_stalled(self, turn: Turn) -> None:
        queued_for = self.store.now() - turn.created_at
        if turn.stored_status is not Status.QUEUED or turn.cancel_requested or queued_for < RESEND_AFTER_MS:
            return
        if self.store.sweep.mark_swept(turn.id, RESEND_AGAIN_AFTER_MS):
            self.store.queue.requeue(turn.id)
