"""Starting turns: one transaction writes the head, its first event and its request, with
whatever must land with it (the session's slot, the Idempotency-Key's binding, a dialect's
items, a second turn staged with it). Nothing is read first: a refused start is explained by the
old items the transaction returns, and is tried again only where that is safe (a tombstone met,
a session slot that changed hands).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from turnstop.core import errors
from turnstop.core.events import Event, PendingEvent
from turnstop.core.records import NewTurn
from turnstop.core.turn import Turn
from turnstop.idempotency.bindings import KeyBinding
from turnstop.idempotency.keys import IDEMPOTENCY_WINDOW_MS, Tombstone, bind_key, refused_key, tombstone_met
from turnstop.store import chunks, codec, sessions
from turnstop.store.heads import HEAD, new_head, typed
from turnstop.store.transaction import Failure, Transaction
from turnstop.store.turn_reads import TurnReads

SLOT_ATTEMPTS = 3  # a start retries when the session's slot changed hands meanwhile

ExtraItems = Callable[[Transaction], None]  # adds a dialect's named items to a start transaction


class TurnStarts(TurnReads):
    """A turn's start (the writes of a started turn are in ``Turns``)."""

    def start(
        self,
        new: NewTurn,
        created: Callable[[Turn], PendingEvent],
        *,
        idempotency: KeyBinding | None = None,
        extra: ExtraItems | None = None,
        run_as: str | None = None,
        lease_ms: int = 0,
    ) -> Turn:
        """Create the head and its first event in one transaction, with the session's slot
        and the Idempotency-Key binding when they apply, and a dialect's ``extra`` items.
        ``created`` renders the first event from the head being written, so both carry the
        same times. A session slot held by a turn that has been cancelled is taken over at
        once (the cancelled turn may still be writing its last step). Raises
        IdempotentReplay, IdempotencyMismatch, NotFound / Conflict (the session),
        ExtraItemsRejected or Retryable; on any of them nothing was written.

        ``run_as`` starts the turn already running under that owner's lease (a streaming
        request runs its turn itself); its request is then kept in memory only. A start whose
        key was cancelled before it (a tombstone) is written born cancelled instead.
        """
        now = self.db.now()
        after: str | None = None  # the cancelled turn whose session slot this one takes over
        over: Tombstone | None = None  # a cancel by this start's key that came first (idempotency/tombstones.py)
        for _ in range(SLOT_ATTEMPTS + 1):  # + 1: a tombstone is met at most once
            turn, tx = self._start_items(new, created, now, idempotency, run_as, lease_ms, after=after, over=over)
            own = set(tx.names)
            if extra is not None:
                extra(tx)
            failure = tx.commit()
            if failure is None:
                return turn
            new, after, over = self._next_attempt(failure, idempotency, new, now, own, after=after, over=over)
        raise errors.Conflict("A turn is already running in this session")

    def _start_items(
        self,
        new: NewTurn,
        created: Callable[[Turn], PendingEvent],
        now: int,
        idempotency: KeyBinding | None,
        run_as: str | None,
        lease_ms: int,
        *,
        after: str | None,
        over: Tombstone | None,
    ) -> tuple[Turn, Transaction]:
        """The turn a start writes, and its transaction with the start's own items: the key's
        binding, the session's slot (taken over from ``after``), the head, its first event and
        its request. Met by a tombstone ``over`` that applies to it, the turn is born cancelled."""
        born = over if over is not None and over.applies_to(new) else None
        owner = None if born else run_as  # a turn born cancelled never runs
        head = new_head(new, now, owner, lease_ms, born)
        turn = codec.turn_from_item(head, new.input)
        assert turn is not None
        first = Event(1, *typed(created(turn)))
        tx = Transaction(self.db)
        if idempotency is not None:
            bind_key(tx, idempotency, new.id, now, self.db.ttl(now + IDEMPOTENCY_WINDOW_MS), over)
        if new.scope.session_id is not None:
            if born:  # it holds no slot: the session only has to be there
                sessions.check_live(tx, new.scope.session_id, new.tenant, new.end_user, now)
            else:
                sessions.take_slot(
                    tx,
                    new.scope.session_id,
                    new.id,
                    new.tenant,
                    new.end_user,
                    now,
                    after,
                    new.input.get("previous_turn"),
                )
        # a turn a worker runs needs its request stored; so does a session's (for the turns after it)
        keep = owner is None or new.scope.session_id is not None or new.keep_request
        self._put_new(tx, new, head, first, now, writer=owner or "start", keep_input=keep)
        return turn, tx

    @classmethod
    def _next_attempt(
        cls,
        failure: Failure,
        idempotency: KeyBinding | None,
        new: NewTurn,
        now: int,
        own: set[str],
        *,
        after: str | None,
        over: Tombstone | None,
    ) -> tuple[NewTurn, str | None, Tombstone | None]:
        """What a refused start tries next: the turn, the slot holder it takes over and the
        tombstone it met. Raises why it was refused when trying again would not help."""
        met = None if idempotency is None else tombstone_met(failure, over)
        if met is not None:
            return new, after, met
        error = cls._start_refused(failure, idempotency, new, now, own)
        if not (failure.failed(sessions.SLOT) and isinstance(error, errors.Conflict)):
            raise error
        holder = error.details.get("active_turn")
        if (following := sessions.follow_latest(new, error)) is not None:
            return following, None if holder is None else str(holder), over
        if holder == after:
            raise error
        # The slot changed hands: take it over if its holder was cancelled (or retry idle).
        return new, None if holder is None else str(holder), over

    def stage(self, tx: Transaction, new: NewTurn, created: Callable[[Turn], PendingEvent], *, prefix: str) -> Turn:
        """Add a second, queued turn (head, first event, request) to another turn's start
        transaction, its items named ``<prefix>head`` and so on: two turns that start together
        or not at all (a chat reply and the action it plans). Returns the staged turn."""
        now = self.db.now()
        head = new_head(new, now, None, 0)
        turn = codec.turn_from_item(head, new.input)
        assert turn is not None
        self._put_new(
            tx, new, head, Event(1, *typed(created(turn))), now, writer="start", keep_input=True, prefix=prefix
        )
        return turn

    def _put_new(
        self,
        tx: Transaction,
        new: NewTurn,
        head: dict[str, Any],
        first: Event,
        now: int,
        *,
        writer: str,
        keep_input: bool,
        prefix: str = "",
    ) -> None:
        tx.put(prefix + HEAD, head, condition="attribute_not_exists(pk)")
        ttl = head["ttl"]
        tx.put(prefix + "created", chunks.chunk_item(new.id, [first], writer, ttl))
        if keep_input and new.input:
            tx.put(prefix + "input", codec.input_item(new.id, new.input, ttl))

    @staticmethod
    def _start_refused(
        failure: Failure, idempotency: KeyBinding | None, new: NewTurn, now: int, own: set[str]
    ) -> Exception:
        if idempotency is not None and (key_error := refused_key(failure, idempotency)) is not None:
            return key_error
        if failure.failed(sessions.SLOT):
            return sessions.refused_slot(failure.old(sessions.SLOT), new.tenant, new.end_user, now)
        if failure.failed(sessions.PREVIOUS):
            return errors.Conflict("A turn is already running in this session")
        theirs = {n: failure.old(n) for n in failure.failed_names if n not in own}
        if theirs:
            return errors.ExtraItemsRejected(theirs)
        return errors.Retryable()
