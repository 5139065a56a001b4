"""Cancel before start: a client that started a turn with an Idempotency-Key may cancel it by
that key before it knows the turn's id.

The key's item ``IDEM#<tenant>#<key>`` / ``IDEM`` is either the binding a start wrote (the
turn's id, in the turn's own start transaction) or, written here, a **tombstone**: "whatever
starts with this key is cancelled". A cancel by key is one conditional write either way:

    put the tombstone        if the key is free (absent or expired)  → nothing has started yet
    ... refused (ALL_OLD)    the binding names the turn               → the one conditional cancel
                                                                        of that turn (request_cancel)

A start that meets the tombstone in its transaction is written again, born cancelled: a queued
head with the tombstone's cancel flag, replacing the tombstone with its binding (on the
condition that it is still that tombstone). So whichever of the two writes lands first, the
turn ends cancelled; nothing runs and nothing is billed. A tombstone applies to starts of the
scope (and end user) it was written for; a start of another scope replaces it and runs.
A cancel by key that names a session puts its tombstone only if the session is the caller's
and live, in one transaction with a check of it: naming another's session writes nothing.
Tombstones expire with the key's window (24 h) like bindings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from turnstop.core.scopes import Scope
from turnstop.core.turn import CancelOutcome, CancelRequest, Turn
from turnstop.idempotency.keys import IDEM_SK, IDEMPOTENCY_WINDOW_MS, KIND, Tombstone, idempotency_pk, tombstone_of
from turnstop.store import codec
from turnstop.store.db import Dynamo
from turnstop.store.transaction import Transaction
from turnstop.store.turns import Turns

TOMBSTONE = "tombstone"  # the tombstone's name in a transaction with a check of its parent


@dataclass(frozen=True)
class ByTurn:
    """The key names a turn: it got the usual cancel write."""

    turn_id: str
    outcome: CancelOutcome
    turn: Turn | None


KeyCancel = Tombstone | ByTurn | None  # None: the key names nothing this caller may cancel


class Tombstones:
    def __init__(self, db: Dynamo, turns: Turns) -> None:
        self.db = db
        self.turns = turns

    def cancel(
        self,
        tenant: str,
        key: str,
        *,
        scope: Scope,
        end_user: str | None,
        req: CancelRequest,
        with_old: bool = False,
        check: Callable[[Transaction, int], None] | None = None,
    ) -> KeyCancel:
        """Cancel what ``key`` started, or will start: a tombstone, or the turn's cancel.
        ``check`` adds a condition on another item (at a time) to the tombstone's write, in one
        transaction: when it fails (the session is not the caller's), nothing is written."""
        now = self.db.now()
        expires = now + IDEMPOTENCY_WINDOW_MS
        tomb = Tombstone(now, expires, str(scope), end_user, req.reason, req.actor, req.source)
        item = _tombstone_item(tenant, key, tomb, self.db.ttl(expires))
        free = "attribute_not_exists(pk) OR expires_at <= :now"
        if check is None:
            written, old = self.db.conditional(
                "put_item",
                Item=codec.dump(item),
                ConditionExpression=free,
                ExpressionAttributeValues=codec.values(now=now),
            )
            if written is not None:
                return tomb
            raw = codec.load(old) or {}
        else:
            tx = Transaction(self.db).put(TOMBSTONE, item, condition=free, values={"now": now})
            check(tx, now)
            failure = tx.commit()
            if failure is None:
                return tomb
            if set(failure.failed_names) - {TOMBSTONE}:
                return None  # the checked item refused: nothing of the caller's there
            raw = failure.old(TOMBSTONE) or {}
        return self._refused_by(raw, tomb, tenant, scope=scope, end_user=end_user, req=req, with_old=with_old)

    def _refused_by(
        self,
        raw: dict[str, Any],
        tomb: Tombstone,
        tenant: str,
        *,
        scope: Scope,
        end_user: str | None,
        req: CancelRequest,
        with_old: bool,
    ) -> KeyCancel:
        """What the key's item that refused the tombstone ``tomb`` means: an earlier tombstone,
        or a binding whose turn gets the one conditional cancel."""
        earlier = tombstone_of(raw)
        if earlier is not None:  # cancelled by key before: the same answer, if it is this caller's
            same = earlier.scope == tomb.scope and (end_user is None or earlier.end_user == end_user)
            return earlier if same else None
        turn_id = raw.get("turn_id")
        if not turn_id:  # the key belongs to a request that started no turn (a kept cancel answer)
            return None
        outcome, turn = self.turns.request_cancel(
            str(turn_id), tenant=tenant, req=req, scope=scope, end_user=end_user, with_old=with_old
        )
        return ByTurn(str(turn_id), outcome, turn)


def _tombstone_item(tenant: str, key: str, tomb: Tombstone, ttl: int) -> dict[str, Any]:
    """The key's item as a tombstone: the cancel's flag, for whatever starts with the key."""
    return {
        "pk": idempotency_pk(tenant, key),
        "sk": IDEM_SK,
        "kind": KIND,
        "scope": tomb.scope,
        "end_user": tomb.end_user,
        "cancel_requested_at": tomb.requested_at,
        "cancel_source": tomb.source,
        "cancel_reason": tomb.reason,
        "cancel_actor": tomb.actor,
        "expires_at": tomb.expires_at,
        "ttl": ttl,
    }
