"""Turns: the head ``TURN#<id>`` / ``TURN``, the request ``INPUT`` and the event chunks
``EV#<last seq>`` (see ``store/chunks.py``).

Every state change is one conditional write: start (a transaction with the first event and
whatever must land with it, ``store/turn_starts.py``), cancel, claim, publish (a chunk, then the
head that makes it visible), renew and finish (final chunk + head + ledger). A failed condition
returns the old head, which says why; nothing here reads before it writes. The head stays small
(no request, no output), so each of its updates costs one write unit.
"""

from __future__ import annotations

from typing import Any

from turnstop.core import errors
from turnstop.core.events import Event
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
from turnstop.observability import logkeys
from turnstop.store import chunks, codec, ledger, sessions
from turnstop.store.cancels import cancel_write
from turnstop.store.codec import TURN_SK, turn_pk
from turnstop.store.db import MAX_TURN_LIFE_S
from turnstop.store.finish import Closing, FinishMode, MyLease, finish_condition
from turnstop.store.heads import HEAD, kept_until
from turnstop.store.transaction import Failure, Transaction
from turnstop.store.turn_starts import TurnStarts


class Turns(TurnStarts):
    """Every write of a turn (its start in ``TurnStarts``, reads in ``TurnReads``)."""

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
        only_queued: bool = False,
    ) -> tuple[CancelOutcome, Turn | None]:
        """One conditional UpdateItem, never a read first. Returns the outcome and the head
        after the write (success) or the head the write failed against. ``not_found`` comes
        with no head unless ``with_old`` and the head is the caller's own live turn in another
        scope (a dialect that explains why, e.g. a scope that is not cancellable).
        ``only_queued``: cancel it only if no work has started (a chat action awaiting
        confirmation, whose confirmation is its claim); a running one is ``already_started``."""
        # every cancel path comes through here: its log lines say which turn and why
        logkeys.bind(
            turn_id=turn_id,
            tenant=tenant,
            cancel_source=req.source,
            dialect=scope.kind.dialect if scope is not None else None,
        )
        now = self.db.now()
        write = cancel_write(
            turn_id, tenant=tenant, req=req, scope=scope, end_user=end_user, only_queued=only_queued, now=now
        )
        new, old = self.db.conditional(
            "update_item",
            Key=codec.key(turn_pk(turn_id), TURN_SK),
            UpdateExpression=write.update,
            ConditionExpression=write.condition,
            ExpressionAttributeValues=codec.values(**write.values),
            ReturnValues="ALL_NEW",
        )
        if new is not None:
            turn = codec.turn_from_item(new)
            assert turn is not None
            logkeys.bind(dialect=turn.scope.kind.dialect)
            return outcome_from_success(turn.stored_status), turn
        old_turn = codec.turn_from_item(old)
        if old_turn is not None and old_turn.tenant == tenant:  # never another tenant's facts
            logkeys.bind(dialect=old_turn.scope.kind.dialect)
        outcome = outcome_from_conflict(old_turn, now, tenant, scope, end_user, only_queued)
        if outcome is CancelOutcome.NOT_FOUND:
            # Only a scope mismatch on the caller's own live turn is explained; anything
            # else (another tenant's or end user's, expired, unknown) stays bare not_found.
            mine = old_turn is not None and old_turn.visible_to(tenant, None, end_user) and not old_turn.expired(now)
            return outcome, (old_turn if with_old and mine else None)
        return outcome, old_turn

    # ------------------------------------------------------------------ running

    def claim(self, turn_id: str, owner: str, lease_ms: int) -> Turn:
        """queued → running with a lease; returns the turn with its request. Raises
        CommitRejected with the head otherwise."""
        now = self.db.now()
        new, old = self.db.conditional(
            "update_item",
            Key=codec.key(turn_pk(turn_id), TURN_SK),
            UpdateExpression="SET status = :running, started_at = :now, lease_owner = :owner, lease_expires_at = :lease",
            # a turn past its caller's deadline never starts (the worker cancels it instead)
            ConditionExpression=(
                "status = :queued AND attribute_not_exists(cancel_requested_at)"
                " AND (attribute_not_exists(deadline_at) OR deadline_at > :now)"
            ),
            ExpressionAttributeValues=codec.values(
                running=Status.RUNNING.value, queued=Status.QUEUED.value, now=now, owner=owner, lease=now + lease_ms
            ),
            ReturnValues="ALL_NEW",
        )
        if new is None:
            raise errors.CommitRejected(codec.turn_from_item(old))
        turn = codec.turn_from_item(new)
        assert turn is not None
        return self.with_input(turn)

    def _advance(self, turn_id: str, owner: str, base: int, sets: dict[str, Any]) -> None:
        """Update the head of my running turn, if it is still mine, unflagged and at ``base``:
        the condition is the cancel check. Raises CommitRejected with the head otherwise."""
        new, old = self.db.conditional(
            "update_item",
            Key=codec.key(turn_pk(turn_id), TURN_SK),
            UpdateExpression="SET " + ", ".join(f"{k} = :{k}" for k in sets),
            ConditionExpression=(
                "status = :running AND lease_owner = :owner AND seq = :base AND attribute_not_exists(cancel_requested_at)"
            ),
            ExpressionAttributeValues=codec.values(running=Status.RUNNING.value, owner=owner, base=base, **sets),
        )
        if new is None:
            raise errors.CommitRejected(codec.turn_from_item(old))

    def publish(
        self, turn_id: str, owner: str, events: list[Event], base: int, usage: Usage, lease_ms: int, keep_until: int = 0
    ) -> int:
        """Make events durable: put their chunk, then move the head's seq over it (renewing the
        lease). Two plain writes, no transaction: a chunk beyond the head's seq is invisible,
        so a refused head update (a cancel, a lost lease) leaves nothing half-written.
        Returns the new committed seq."""
        now = self.db.now()
        last = events[-1].seq
        assert events[0].seq == base + 1
        ttl = max(self.db.ttl(now, MAX_TURN_LIFE_S), self.db.ttl(keep_until))
        for part in chunks.split(events):
            item = chunks.chunk_item(turn_id, part, owner, ttl)
            written, old = self.db.conditional(
                "put_item", Item=codec.dump(item), ConditionExpression="attribute_not_exists(pk)"
            )
            if written is None and (codec.load(old) or {}).get("owner") != owner:
                raise errors.CommitRejected(None)  # another writer finished this turn there
        self._advance(turn_id, owner, base, {"seq": last, "usage": usage.to_item(), "lease_expires_at": now + lease_ms})
        return last

    def renew(self, turn_id: str, owner: str, base: int, lease_ms: int) -> None:
        """Renew my lease while nothing new is to be published (also a cancel check)."""
        self._advance(turn_id, owner, base, {"lease_expires_at": self.db.now() + lease_ms})

    # ------------------------------------------------------------------ finish

    def finish(
        self,
        turn: Turn,
        status: Status,
        closing: Closing,
        *,
        usage: Usage,
        mode: FinishMode,
        error: dict[str, Any] | None = None,
        at: int | None = None,
        writer: str = "finish",
        observed_at: int | None = None,
    ) -> Turn:
        """Write the last events (the last one is the terminal event) as one chunk and the
        terminal state together, with the ledger entries and the dialect's closing items, and
        give a session turn's slot back. ``turn.seq`` is the committed seq the events follow.
        Exactly one finish wins per turn: the condition names the state it leaves (``mode``).
        A cancelled turn records ``observed_at``: when its writer saw the cancel flag.
        Raises CommitRejected with the head it was refused against."""
        now = self.db.now() if at is None else at
        done_at = turn.completed_at if turn.cancelled_before_start else now
        assert done_at is not None and closing.events and closing.events[0].seq == turn.seq + 1
        expires = done_at + turn.grace_ms
        seq = closing.events[-1].seq
        tx = Transaction(self.db)
        self._put_last_events(tx, turn, closing, mode, writer, expires)
        observed = observed_at if status is Status.CANCELLED else None
        self._finish_head(
            tx,
            turn,
            status,
            mode,
            now,
            done_at=done_at,
            expires=expires,
            seq=seq,
            usage=usage,
            error=error,
            observed_at=observed,
            upstream=closing.upstream,
        )
        holds_slot = self._put_closing(tx, turn, closing, now)
        failure = self._commit_finish(tx, holds_slot)
        if failure is not None:
            return self._landed_before(failure, status, seq, done_at)
        return turn.replace(
            stored_status=status,
            finished_at=done_at,
            stored_expires_at=expires,
            seq=seq,
            usage=usage,
            lease_owner=None,
            lease_expires_at=None,
            error=error,
            cancel_observed_at=observed,
            upstream=closing.upstream or turn.upstream,
        )

    def _put_last_events(
        self, tx: Transaction, turn: Turn, closing: Closing, mode: FinishMode, writer: str, expires: int
    ) -> None:
        """The closing events as chunks, long outputs stored by reference."""
        stored = closing.events[: -closing.closing] + chunks.by_reference(
            closing.events[-closing.closing :], closing.output
        )
        refs = stored != closing.events
        parts = chunks.split(stored)
        # Several chunks only under my own lease (no other writer can exist): the earlier ones
        # are put unconditionally too, over any chunk a refused flush of mine left at their key.
        assert len(parts) == 1 or isinstance(mode, MyLease)
        for i, part in enumerate(parts):
            name = "events" if i == len(parts) - 1 else f"events:{i}"
            tx.put(
                name, chunks.chunk_item(turn.id, part, writer, self.db.ttl(max(expires, kept_until(turn.input))), refs)
            )

    @staticmethod
    def _put_closing(tx: Transaction, turn: Turn, closing: Closing, now: int) -> bool:
        """What lands with the terminal head: the ledger entries, the dialect's closing items and
        the session's slot given back. Returns whether the turn held a slot."""
        ledger.add_entries(tx, turn, closing.ledger, now)
        for i, item in enumerate(closing.items):
            tx.put(f"closing:{i}", item, condition="attribute_not_exists(pk)")
        return sessions.release_slot(tx, turn)

    @staticmethod
    def _commit_finish(tx: Transaction, holds_slot: bool) -> Failure | None:
        """The finish's transaction; once more without the slot if only the slot refused."""
        failure = tx.commit()
        if failure is not None and holds_slot and failure.failed_names == [sessions.SLOT]:
            # The session is gone or has moved on to another turn; the turn still has to end.
            failure = tx.without(sessions.SLOT).commit()
        return failure

    @staticmethod
    def _landed_before(failure: Failure, status: Status, seq: int, done_at: int) -> Turn:
        """The head a refused finish met, if it is this very finish's: it landed before and only
        its answer was lost (a timeout), not its write. Raises CommitRejected with it otherwise."""
        old = codec.turn_from_item(failure.old(HEAD))
        if old is not None and old.terminal and (old.stored_status, old.seq, old.finished_at) == (status, seq, done_at):
            return old
        raise errors.CommitRejected(old)

    def _finish_head(
        self,
        tx: Transaction,
        turn: Turn,
        status: Status,
        mode: FinishMode,
        now: int,
        *,
        done_at: int,
        expires: int,
        seq: int,
        usage: Usage,
        error: dict[str, Any] | None,
        observed_at: int | None = None,
        upstream: dict[str, Any] | None = None,
    ) -> None:
        cond, cond_vals = finish_condition(mode, status, now)
        vals: dict[str, Any] = {
            "status": status.value,
            "done": done_at,
            "exp": expires,
            "ttl": self.db.ttl(max(expires, kept_until(turn.input))),
            "seq": seq,
            "usage": usage.to_item(),
            "base": turn.seq,
            **cond_vals,
        }
        sets = "status = :status, finished_at = :done, expires_at = :exp, ttl = :ttl, seq = :seq, usage = :usage"
        if error is not None:
            sets += ", error = :error"
            vals["error"] = codec.compact_json(error)
        if observed_at is not None:
            sets += ", cancel_observed_at = :observed"
            vals["observed"] = observed_at
        if upstream is not None:  # one small attribute more on the write that is due anyway
            sets += ", upstream = :upstream"
            vals["upstream"] = codec.compact_json(upstream)
        # out of the in-flight and live indexes (if a cancel has not taken it out of the live
        # one already): a finished turn is nobody's to sweep or stop
        update = f"SET {sets} REMOVE lease_owner, lease_expires_at, gsi2pk, gsi2sk, gsi4pk, gsi4sk"
        tx.update(HEAD, turn_pk(turn.id), TURN_SK, update, condition=cond, values=vals)
