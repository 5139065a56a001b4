"""Turns: the head ``TURN#<id>`` / ``TURN`` and its events ``TURN#<id>`` / ``EV#<seq>``.

Every state change is one conditional write: start (a transaction with the first event and
whatever must land with it), cancel, claim, commit (events + head) and finish (closing events
+ head + ledger). A failed condition returns the old head, which says why; nothing here reads
before it writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from turnstop.core import errors
from turnstop.core.events import Event, PendingEvent, committed_text
from turnstop.core.records import IdempotencyClaim, NewTurn
from turnstop.core.scopes import Scope
from turnstop.core.turn import (
    CancelOutcome,
    CancelRequest,
    Status,
    Turn,
    Usage,
    outcome_from_conflict,
    outcome_from_success,
)
from turnstop.store import codec, ledger, sessions
from turnstop.store.codec import TURN_SK, ev_sk, turn_pk
from turnstop.store.db import MAX_TURN_LIFE_S, Dynamo
from turnstop.store.finish import Closing, FinishMode, finish_condition
from turnstop.store.transaction import Failure, Transaction

IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000
# A transaction holds at most 100 items; leave room for the head, ledger and dialect items.
MAX_EVENTS_PER_COMMIT = 90
INFLIGHT_PREFIX = "INFLIGHT#"
INFLIGHT_SHARDS = 8
HEAD = "head"  # the head's name in every turn transaction
IDEMPOTENCY = "idempotency"

ExtraItems = Callable[[Transaction], None]  # adds a dialect's named items to a start transaction


def inflight_pk(turn_id: str) -> str:
    """Spread in-flight turns over a few index partitions so none gets hot."""
    return f"{INFLIGHT_PREFIX}{int(hashlib.sha256(turn_id.encode()).hexdigest()[:8], 16) % INFLIGHT_SHARDS}"


def idempotency_pk(tenant: str, key: str) -> str:
    return f"IDEM#{tenant}#{key}"


class Turns:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    # ------------------------------------------------------------------ start

    def start(
        self,
        new: NewTurn,
        created: Callable[[Turn], PendingEvent],
        *,
        idempotency: IdempotencyClaim | None = None,
        extra: ExtraItems | None = None,
    ) -> Turn:
        """Create the head and its first event in one transaction, with the session's slot
        and the Idempotency-Key binding when they apply, and a dialect's ``extra`` items.
        ``created`` renders the first event from the head being written, so both carry the
        same times. Raises IdempotentReplay, IdempotencyMismatch, NotFound / Conflict (the
        session), ExtraItemsRejected or Retryable; on any of them nothing was written."""
        now = self.db.now()
        head = self._new_head(new, now)
        turn = codec.turn_from_item(head)
        assert turn is not None
        tx = Transaction(self.db)
        if idempotency is not None:
            self._bind_key(tx, idempotency, new.id, now)
        if new.scope.session_id is not None:
            sessions.take_slot(tx, new.scope.session_id, new.id, new.tenant, now)
        tx.put(HEAD, head, condition="attribute_not_exists(pk)")
        first = created(turn)
        tx.put("created", self._event(new.id, 1, first, self.db.ttl(now, MAX_TURN_LIFE_S)))
        own = set(tx.names)
        if extra is not None:
            extra(tx)
        failure = tx.commit()
        if failure is not None:
            raise self._start_refused(failure, idempotency, new.tenant, now, own)
        return turn

    def _new_head(self, new: NewTurn, now: int) -> dict[str, Any]:
        return {
            "pk": turn_pk(new.id),
            "sk": TURN_SK,
            "id": new.id,
            "kind": new.kind,
            "tenant": new.tenant,
            "scope": str(new.scope),
            "end_user": new.end_user,
            "account_id": new.account_id,
            "status": Status.QUEUED.value,
            "created_at": now,
            "seq": 1,
            "grace_ms": new.grace_ms,
            "input": codec.compact_json(new.input),
            "usage": Usage(new.input_tokens, 0).to_item(),
            "ttl": self.db.ttl(now, MAX_TURN_LIFE_S),
            # in the sparse in-flight index until its finish removes it (see Sweep)
            "gsi2pk": inflight_pk(new.id),
            "gsi2sk": f"{now:015d}#{new.id}",
            **new.index_keys,
        }

    def _bind_key(self, tx: Transaction, claim: IdempotencyClaim, turn_id: str, now: int) -> None:
        expires = now + IDEMPOTENCY_WINDOW_MS
        item = {
            "pk": idempotency_pk(claim.tenant, claim.key),
            "sk": "IDEM",
            "turn_id": turn_id,
            "fingerprint": claim.fingerprint,
            "expires_at": expires,
            "ttl": self.db.ttl(expires),
        }
        tx.put(IDEMPOTENCY, item, condition="attribute_not_exists(pk) OR expires_at <= :now", values={"now": now})

    @staticmethod
    def _start_refused(
        failure: Failure, idempotency: IdempotencyClaim | None, tenant: str, now: int, own: set[str]
    ) -> Exception:
        if idempotency is not None and failure.failed(IDEMPOTENCY):
            old = failure.old(IDEMPOTENCY) or {}
            if old.get("fingerprint") == idempotency.fingerprint:
                return errors.IdempotentReplay(old["turn_id"])
            return errors.IdempotencyMismatch(
                "Idempotency-Key was already used with a different request body", turn_id=old.get("turn_id")
            )
        if failure.failed(sessions.SLOT):
            return sessions.explain_refused_slot(failure.old(sessions.SLOT), tenant, now)
        theirs = {n: failure.old(n) for n in failure.failed_names if n not in own}
        if theirs:
            return errors.ExtraItemsRejected(theirs)
        return errors.Retryable("turn id collision")

    @staticmethod
    def _event(turn_id: str, seq: int, event: PendingEvent, ttl: int) -> dict[str, Any]:
        return {
            "pk": turn_pk(turn_id),
            "sk": ev_sk(seq),
            "type": event.type,
            "data": codec.compact_json(event.data),
            "ttl": ttl,
        }

    # ------------------------------------------------------------------ reads

    def get(self, turn_id: str) -> Turn | None:
        return codec.turn_from_item(self.db.get(turn_pk(turn_id), TURN_SK))

    def get_visible(
        self,
        turn_id: str,
        *,
        tenant: str,
        kinds: tuple[str, ...] | None = None,
        scope: Scope | None = None,
        end_user: str | None = None,
    ) -> Turn | None:
        """The turn if this caller may see it now: its kind, tenant, scope and end user match
        and it is inside its grace window. Anything else is None, so callers answer not found
        without telling unknown, foreign and expired ids apart."""
        turn = self.get(turn_id)
        if (
            turn is None
            or (kinds is not None and turn.kind not in kinds)
            or not turn.visible_to(tenant, scope, end_user)
            or turn.expired(self.db.now())
        ):
            return None
        return turn

    def read_events(self, turn_id: str, after: int, upto: int) -> list[Event]:
        """Committed events with after < seq <= upto, in order."""
        if upto <= after:
            return []
        items = self.db.query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues=codec.values(pk=turn_pk(turn_id), lo=ev_sk(after + 1), hi=ev_sk(upto)),
            ConsistentRead=True,
        )
        return [codec.event_from_item(i) for i in items]

    def committed_text(self, turn: Turn) -> str:
        """The visible output committed so far (nothing before a worker started it)."""
        if turn.stored_status is Status.QUEUED or turn.seq <= 1:
            return ""
        return committed_text(self.read_events(turn.id, 1, turn.seq))

    # ------------------------------------------------------------------ cancel

    def request_cancel(
        self,
        turn_id: str,
        *,
        tenant: str,
        req: CancelRequest,
        scope: Scope | None = None,
        end_user: str | None = None,
        with_old: bool = False,
    ) -> tuple[CancelOutcome, Turn | None]:
        """One conditional UpdateItem, never a read first. Returns the outcome and the head
        after the write (success) or the head the write failed against. ``not_found`` comes
        with no head unless ``with_old`` and the head is the caller's own live turn in another
        scope (a dialect that explains why, e.g. a scope that is not cancellable)."""
        now = self.db.now()
        cond = ["tenant = :tenant", "status IN (:queued, :running)", "attribute_not_exists(cancel_requested_at)"]
        vals: dict[str, Any] = {"tenant": tenant, "queued": Status.QUEUED.value, "running": Status.RUNNING.value}
        sets = {
            "cancel_requested_at": now,
            "cancel_source": req.source,
            "cancel_reason": req.reason,
            "cancel_actor": req.actor,
        }
        if scope is not None:
            cond.append("scope = :scope")
            vals["scope"] = str(scope)
        if end_user is not None:
            cond.append("end_user = :end_user")
            vals["end_user"] = end_user
        present = {k: v for k, v in sets.items() if v is not None}
        new, old = self.db.conditional(
            "update_item",
            Key=codec.key(turn_pk(turn_id), TURN_SK),
            UpdateExpression="SET " + ", ".join(f"{k} = :{k}" for k in present),
            ConditionExpression=" AND ".join(cond),
            ExpressionAttributeValues=codec.values(**vals, **present),
            ReturnValues="ALL_NEW",
        )
        if new is not None:
            turn = codec.turn_from_item(new)
            assert turn is not None
            return outcome_from_success(turn.stored_status), turn
        old_turn = codec.turn_from_item(old)
        outcome = outcome_from_conflict(old_turn, now, tenant, scope, end_user)
        if outcome is CancelOutcome.NOT_FOUND:
            # Only a scope mismatch on the caller's own live turn is explained; anything
            # else (another tenant's or end user's, expired, unknown) stays bare not_found.
            mine = old_turn is not None and old_turn.visible_to(tenant, None, end_user) and not old_turn.expired(now)
            return outcome, (old_turn if with_old and mine else None)
        return outcome, old_turn

    # ------------------------------------------------------------------ running

    def claim(self, turn_id: str, owner: str, lease_ms: int) -> Turn:
        """queued → running with a lease. Raises CommitRejected with the head otherwise."""
        now = self.db.now()
        new, old = self.db.conditional(
            "update_item",
            Key=codec.key(turn_pk(turn_id), TURN_SK),
            UpdateExpression="SET status = :running, started_at = :now, lease_owner = :owner, lease_expires_at = :lease",
            ConditionExpression="status = :queued AND attribute_not_exists(cancel_requested_at)",
            ExpressionAttributeValues=codec.values(
                running=Status.RUNNING.value, queued=Status.QUEUED.value, now=now, owner=owner, lease=now + lease_ms
            ),
            ReturnValues="ALL_NEW",
        )
        if new is None:
            raise errors.CommitRejected(codec.turn_from_item(old))
        turn = codec.turn_from_item(new)
        assert turn is not None
        return turn

    def commit(self, turn: Turn, owner: str, events: list[PendingEvent], usage: Usage, lease_ms: int) -> int:
        """Publish events by moving the head's committed seq over them.

        The head's condition is the cancel check: ``running``, my lease, no cancel flag, and
        the seq I last committed. One write, no read. Returns the new committed seq.
        """
        now = self.db.now()
        base, new_seq = turn.seq, turn.seq + len(events)
        update = "SET seq = :seq, usage = :usage, lease_expires_at = :lease"
        cond = (
            "status = :running AND lease_owner = :owner AND attribute_not_exists(cancel_requested_at) AND seq = :base"
        )
        vals = {
            "seq": new_seq,
            "usage": usage.to_item(),
            "lease": now + lease_ms,
            "running": Status.RUNNING.value,
            "owner": owner,
            "base": base,
        }
        if not events:
            new, old = self.db.conditional(
                "update_item",
                Key=codec.key(turn_pk(turn.id), TURN_SK),
                UpdateExpression=update,
                ConditionExpression=cond,
                ExpressionAttributeValues=codec.values(**vals),
            )
            if new is None:
                raise errors.CommitRejected(codec.turn_from_item(old))
            return new_seq
        tx = Transaction(self.db)
        ttl = self.db.ttl(now, MAX_TURN_LIFE_S)
        for i, e in enumerate(events):
            tx.put(f"event:{base + i + 1}", self._event(turn.id, base + i + 1, e, ttl))
        tx.update(HEAD, turn_pk(turn.id), TURN_SK, update, condition=cond, values=vals)
        failure = tx.commit()
        if failure is not None:
            raise errors.CommitRejected(codec.turn_from_item(failure.old(HEAD)))
        return new_seq

    # ------------------------------------------------------------------ finish

    def finish(self, turn: Turn, status: Status, closing: Closing, *, usage: Usage, mode: FinishMode,
               error: dict[str, Any] | None = None, at: int | None = None) -> Turn:  # fmt: skip
        """Write the closing events and the terminal state together, with the ledger entries
        and the dialect's closing items, and give a session turn's slot back. Exactly one
        finish wins per turn: the condition names the state it leaves (``mode``). Raises
        CommitRejected with the head it was refused against."""
        now = self.db.now() if at is None else at
        done_at = turn.completed_at if turn.cancelled_before_start else now
        assert done_at is not None
        expires = done_at + turn.grace_ms
        seq = turn.seq + len(closing.events)
        tx = Transaction(self.db)
        for i, e in enumerate(closing.events):
            tx.put(f"event:{turn.seq + i + 1}", self._event(turn.id, turn.seq + i + 1, e, self.db.ttl(expires)))
        self._finish_head(
            tx, turn, status, mode, now, done_at=done_at, expires=expires, seq=seq, usage=usage, error=error
        )
        ledger.add_entries(tx, turn, closing.ledger, now)
        for i, item in enumerate(closing.items):
            tx.put(f"closing:{i}", item, condition="attribute_not_exists(pk)")
        holds_slot = sessions.release_slot(tx, turn)
        failure = tx.commit()
        if failure is not None and holds_slot and failure.failed_names == [sessions.SLOT]:
            # The session is gone or has moved on to another turn; the turn still has to end.
            failure = tx.without(sessions.SLOT).commit()
        if failure is not None:
            raise errors.CommitRejected(codec.turn_from_item(failure.old(HEAD)))
        return turn.replace(
            stored_status=status, finished_at=done_at, stored_expires_at=expires, seq=seq, usage=usage,
            lease_owner=None, lease_expires_at=None, error=error,
        )  # fmt: skip

    def _finish_head(self, tx: Transaction, turn: Turn, status: Status, mode: FinishMode, now: int, *, done_at: int,
                     expires: int, seq: int, usage: Usage, error: dict[str, Any] | None) -> None:  # fmt: skip
        cond, cond_vals = finish_condition(mode, status, now)
        vals: dict[str, Any] = {"status": status.value, "done": done_at, "exp": expires, "ttl": self.db.ttl(expires),
                                "seq": seq, "usage": usage.to_item(), "base": turn.seq, **cond_vals}  # fmt: skip
        sets = "status = :status, finished_at = :done, expires_at = :exp, ttl = :ttl, seq = :seq, usage = :usage"
        if error is not None:
            sets += ", error = :error"
            vals["error"] = codec.compact_json(error)
        update = f"SET {sets} REMOVE lease_owner, lease_expires_at, gsi2pk, gsi2sk"
        tx.update(HEAD, turn_pk(turn.id), TURN_SK, update, condition=cond, values=vals)
