"""The one idempotent-replay rule of every dialect: a repeated Idempotency-Key with the same
request gets back the turn it started, as it stands now."""

from __future__ import annotations

from turnstop.auth import Principal
from turnstop.core import errors
from turnstop.core.turn import Status, Turn
from turnstop.store import Store

# A replay re-sends the message of a turn still queued this long after its creation (the
# first attempt may have stopped between writing the turn and queueing it); concurrent
# replays send at most one message per interval (a conditional write decides).
RESEND_AFTER_MS = 10_000
RESEND_AGAIN_AFTER_MS = 60_000


def replayed_turn(store: Store, turn_id: str, principal: Principal) -> Turn:
    """The turn an Idempotency-Key started, the same way in every dialect: while it is
    kept, as it stands now (a still-queued turn whose message looks lost is re-sent,
    once); once past its grace window, ``IdempotencyExpired``."""
    turn = store.turns.get(turn_id)
    if turn is None or turn.expired(store.now()):
        raise errors.IdempotencyExpired(
            "The turn started with this Idempotency-Key has finished and is no longer kept; "
            "send the request with a new Idempotency-Key"
        )
    if not turn.visible_to(principal.tenant, end_user=principal.end_user):
        raise errors.IdempotencyMismatch("Idempotency-Key was already used with a different request")
    _resend_if_stalled(store, turn)
    return turn


def _resend_if_stalled(store: Store, turn: Turn) -> None:
    queued_for = store.now() - turn.created_at
    if turn.stored_status is not Status.QUEUED or turn.cancel_requested or queued_for < RESEND_AFTER_MS:
        return
    if store.sweep.mark_swept(turn.id, RESEND_AGAIN_AFTER_MS):
        store.queue.requeue(turn.id)
