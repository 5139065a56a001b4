"""The chat cancel: the cancel flag of the turns in flight on a chat thread (the action waiting
for confirmation, a reply still being written) set in one write, so either all of them are
flagged or none is. ``Chat`` (``store/chat.py``) is built on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from turnstop.core.scopes import Scope
from turnstop.core.turn import CancelOutcome, CancelRequest, Turn, outcome_from_conflict
from turnstop.observability import logkeys
from turnstop.store import codec
from turnstop.store.cancels import cancel_write
from turnstop.store.codec import TURN_SK, turn_pk
from turnstop.store.db import Dynamo
from turnstop.store.transaction import Transaction
from turnstop.store.turns import Turns


@dataclass(frozen=True)
class CancelTarget:
    """A turn in flight on a thread, by name (``action``, ``reply``); ``only_queued`` for an
    action, which only a cancel before its confirmation may stop."""

    name: str
    turn_id: str
    only_queued: bool


@dataclass(frozen=True)
class CancelResult:
    """``landed``: every target was flagged, by one write. Otherwise nothing was written and
    ``refused`` says why each refused target's condition failed (targets that would have been
    flagged are not in it)."""

    landed: bool
    refused: dict[str, tuple[CancelOutcome, Turn | None]]


class ChatCancels:
    """The cancel of the turns on a chat thread (the thread's writes and reads: ``Chat``)."""

    def __init__(self, db: Dynamo, turns: Turns) -> None:
        self.db = db
        self.turns = turns

    def cancel_together(
        self, targets: list[CancelTarget], *, tenant: str, scope: Scope, end_user: str, req: CancelRequest
    ) -> CancelResult:
        """Set the cancel flag of every target in one write — an UpdateItem for one target, a
        transaction for several — so either all of them are flagged or none is. No read first:
        a refused condition returns the old heads, which say why."""
        logkeys.bind(turn_id=targets[0].turn_id, tenant=tenant, cancel_source=req.source, dialect=scope.kind.dialect)
        if len(targets) == 1:
            (target,) = targets
            outcome, old = self.turns.request_cancel(
                target.turn_id, tenant=tenant, req=req, scope=scope, end_user=end_user, only_queued=target.only_queued
            )
            if outcome in (CancelOutcome.CANCELLED, CancelOutcome.CANCELLING):
                return CancelResult(True, {})
            return CancelResult(False, {target.name: (outcome, old)})
        now = self.db.now()
        writes = {
            t.name: cancel_write(
                t.turn_id, tenant=tenant, req=req, scope=scope, end_user=end_user, only_queued=t.only_queued, now=now
            )
            for t in targets
        }
        tx = Transaction(self.db)
        for t in targets:
            w = writes[t.name]
            tx.update(t.name, turn_pk(t.turn_id), TURN_SK, w.update, condition=w.condition, values=w.values)
        failure = tx.commit()
        if failure is None:
            return CancelResult(True, {})
        refused: dict[str, tuple[CancelOutcome, Turn | None]] = {}
        for t in targets:
            if failure.failed(t.name):
                old = codec.turn_from_item(failure.old(t.name))
                outcome = outcome_from_conflict(old, now, tenant, scope, end_user, t.only_queued)
                refused[t.name] = (outcome, None if outcome is CancelOutcome.NOT_FOUND else old)
        return CancelResult(False, refused)
