"""A stateful property test of the store and runtime (hypothesis ``RuleBasedStateMachine``).

Random interleavings of what happens to turns in production: start (stateless or in a
session, with or without an Idempotency-Key), claim, publish and finish by a worker written
out by hand, cancels over HTTP and from the queue (by the owner, the tenant, another tenant,
another end user), time passing (leases and grace windows expire), a redelivered message
(which runs a queued turn whole, or settles a lost worker's), the sweeper re-sending the
messages of turns nobody moves, session deletes and idempotent replays. After every step, for every turn:

- once ended, it has exactly one terminal event, the last, and its status never changes;
  a turn still running has none;
- a cancel accepted (202 / ``cancelling`` or ``cancelled``) always ends cancelled;
- the ledger holds at most one debit, and none for a cancelled turn;
- another tenant never sees it, nor another end user a turn made for one;
- a session holds at most one turn that is neither ended nor cancelled.

``make test`` runs a bounded, derandomized number of examples; ``make soak`` runs many more
(``TURNSTOP_SOAK=1``), on moto and on DynamoDB Local.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.cases.turns import FAST, LEASE_MS, HookModel
from tests.conftest import create_table
from tests.fakes import FakeClock
from turnstop.auth import Principal
from turnstop.cancels.queue import CancelMessage, handle
from turnstop.core import errors, scopes
from turnstop.core.errors import CommitRejected, IdempotentReplay
from turnstop.core.events import Event
from turnstop.core.ids import new_id
from turnstop.core.records import NewTurn
from turnstop.core.turn import TERMINAL_STATUSES, CancelOutcome, CancelRequest, Status, Turn, TurnEnd, Usage
from turnstop.dialects.sessions.renderer import RENDERERS, SESSION_KIND, STATELESS_KIND, created_event
from turnstop.dialects.sessions.service import Sessions
from turnstop.idempotency.bindings import KeyBinding
from turnstop.platform.settings import Settings
from turnstop.runtime.runner import LeaseHeld, TurnRunner
from turnstop.store import Store
from turnstop.store.finish import Closing, MyLease
from turnstop.store.heads import INFLIGHT_SHARDS

SOAK = os.environ.get("TURNSTOP_SOAK") == "1"
TENANTS = ("t1", "t2")
USERS = (None, "alice", "bob")
STRANGER_TENANT = "t-stranger"
TERMINAL_EVENTS = {
    "response.completed",
    "response.cancelled",
    "response.failed",
    "message.completed",
    "message.cancelled",
    "message.failed",
}
ACCEPTED = (CancelOutcome.CANCELLING, CancelOutcome.CANCELLED)
# Few turns at a time, so the steps land on the same turns: the bugs live in interleavings
# (claim, cancel, publish, finish, redeliver on one turn), not in the number of turns.
MAX_OPEN_TURNS = 3


@dataclass
class Known:
    id: str
    tenant: str
    end_user: str | None
    session: str | None
    idem: KeyBinding | None
    new: NewTurn
    cancel_accepted: bool = False
    final: Status | None = None


@dataclass
class Holder:
    """A worker that claimed a turn and writes it by hand (what it believes is committed)."""

    owner: str
    turn: Turn
    words: int = 0


def machine(client: Any, template: Any, examples: int, steps: int) -> None:
    class TurnMachine(RuleBasedStateMachine):
        turns = Bundle("turns")
        sessions = Bundle("sessions")

        def __init__(self) -> None:
            super().__init__()
            self.table = create_table(client, template)
            self.clock = FakeClock()
            self.store = Store(self.table, clock=self.clock, dynamodb=client)
            self.sessions_api = Sessions(self.store, Settings(table=self.table))
            self.known: dict[str, Known] = {}
            self.holders: dict[str, Holder] = {}
            self.session_owner: dict[str, tuple[str, str | None]] = {}
            self.touched: set[str] = set()  # turns a step may have changed: the invariants look at these

        def teardown(self) -> None:
            client.delete_table(TableName=self.table)

        # -- starting

        @rule(target=sessions, tenant=st.sampled_from(TENANTS), user=st.sampled_from(USERS))
        def create_session(self, tenant: str, user: str | None) -> str:
            sid = new_id("sess_")
            self.store.sessions.create(sid, tenant, True, 86_400_000, user)
            self.session_owner[sid] = (tenant, user)
            return sid

        def _few_open_turns(self) -> bool:
            return sum(k.final is None for k in self.known.values()) < MAX_OPEN_TURNS

        @precondition(_few_open_turns)
        @rule(target=turns, tenant=st.sampled_from(TENANTS), user=st.sampled_from(USERS), keyed=st.booleans())
        def start_stateless(self, tenant: str, user: str | None, keyed: bool) -> Any:
            return self._start(tenant, user, None, keyed)

        @precondition(_few_open_turns)
        @rule(target=turns, session=sessions, keyed=st.booleans())
        def start_in_session(self, session: str, keyed: bool) -> Any:
            tenant, user = self.session_owner[session]
            return self._start(tenant, user, session, keyed)

        def _start(self, tenant: str, user: str | None, session: str | None, keyed: bool) -> Any:
            new = NewTurn(
                id=new_id("msg_" if session else "resp_"),
                kind=SESSION_KIND if session else STATELESS_KIND,
                tenant=tenant,
                scope=scopes.session(session) if session else scopes.STATELESS,
                grace_ms=120_000,
                input={"prompt": "Write a 4-word note"},
                end_user=user,
            )
            idem = KeyBinding(tenant, f"key-{new.id}", "fingerprint") if keyed else None
            try:
                turn = self.store.turns.start(new, created_event, idempotency=idem)
            except (errors.Conflict, errors.NotFound):  # the session is busy or deleted
                return multiple()
            self.known[turn.id] = Known(turn.id, tenant, user, session, idem, new)
            self.touched.add(turn.id)
            return turn.id

        @rule(turn=turns)
        def replay(self, turn: str) -> None:
            self.touched.add(turn)
            k = self.known[turn]
            if k.idem is None:
                return
            again = dataclasses.replace(k.new, id=new_id("resp_"))
            try:
                self.store.turns.start(again, created_event, idempotency=k.idem)
            except IdempotentReplay as replay:
                assert replay.turn_id == turn  # the same turn, never a second one
            except errors.IdempotencyExpired:
                head = self.store.turns.head(turn)
                assert head is None or head.terminal
            else:
                raise AssertionError("a replayed Idempotency-Key started a second turn")

        # -- a worker, by hand

        def _open(self) -> list[str]:
            return [k.id for k in self.known.values() if k.final is None]  # in creation order: ids are random

        def _some_open(self) -> bool:
            return bool(self._open())

        @rule(turn=turns, owner=st.sampled_from(("worker-a", "worker-b")))
        def claim(self, turn: str, owner: str) -> None:
            self._claim(turn, owner)

        @precondition(_some_open)
        @rule(data=st.data(), owner=st.sampled_from(("worker-a", "worker-b")))
        def claim_open(self, data: st.DataObject, owner: str) -> None:
            self._claim(data.draw(st.sampled_from(self._open()), label="open turn"), owner)

        def _claim(self, turn: str, owner: str) -> None:
            self.touched.add(turn)
            before = self.store.turns.head(turn)
            try:
                claimed = self.store.turns.claim(turn, owner, LEASE_MS)
            except CommitRejected:
                return
            assert before is not None and before.stored_status is Status.QUEUED and not before.cancel_requested
            assert turn not in self.holders
            self.holders[turn] = Holder(owner, claimed)

        def _holding(self) -> bool:
            return bool(self.holders)

        def _held(self, data: st.DataObject) -> str:
            return data.draw(st.sampled_from(list(self.holders)), label="held turn")

        @precondition(_holding)
        @rule(data=st.data(), words=st.integers(1, 3))
        def publish(self, data: st.DataObject, words: int) -> None:
            turn = self._held(data)
            self.touched.add(turn)
            h = self.holders[turn]
            base = h.turn.seq
            evs = [
                Event(base + 1 + i, "response.delta", {"id": turn, "delta": f"w{h.words + i} "}) for i in range(words)
            ]
            usage = Usage(h.turn.usage.input_tokens, h.turn.usage.output_tokens + words)
            try:
                seq = self.store.turns.publish(turn, h.owner, evs, base, usage, LEASE_MS)
            except CommitRejected:
                return  # a cancel or a lost lease: the worker's next finish finds out which
            h.turn, h.words = h.turn.replace(seq=seq, usage=usage), h.words + words

        @precondition(_holding)
        @rule(data=st.data(), status=st.sampled_from((Status.COMPLETED, Status.FAILED)))
        def finish(self, data: st.DataObject, status: Status) -> None:
            self._worker_finishes(self._held(data), status)

        @precondition(_holding)
        @rule(
            data=st.data(),
            status=st.sampled_from((Status.COMPLETED, Status.FAILED)),
            via=st.sampled_from(("http", "queue")),
        )
        def cancel_lands_just_before_finish(self, data: st.DataObject, status: Status, via: str) -> None:
            """The race that matters most: the worker's last step was committed unflagged,
            then a cancel is accepted, then the worker finishes as it planned."""
            turn = self._held(data)
            self._cancel(turn, "creator", via)
            self._worker_finishes(turn, status)

        def _worker_finishes(self, turn: str, status: Status) -> None:
            self.touched.add(turn)
            h = self.holders.pop(turn)
            try:
                self._finish(h, h.turn, status)
            except CommitRejected as refused:
                old = refused.old
                if old is not None and old.cancel_requested and not old.terminal and old.lease_owner == h.owner:
                    flagged = h.turn.replace(cancel_requested_at=old.cancel_requested_at, cancel_seq=old.cancel_seq)
                    try:
                        self._finish(h, flagged, Status.CANCELLED)
                    except CommitRejected:
                        pass  # a redelivered message ended it first (the worker had lost its lease)

        def _finish(self, h: Holder, turn: Turn, status: Status) -> None:
            renderer = RENDERERS[turn.kind]
            at = self.store.now()
            error = {"code": "model_error", "message": "failed"} if status is Status.FAILED else None
            text = "".join(f"w{i} " for i in range(h.words))
            end = TurnEnd(status, turn.usage, text, "", error, finished_at=at)
            closing = [Event(turn.seq + 1 + i, e.type, e.data) for i, e in enumerate(renderer.on_end(turn, end))]
            record = Closing(closing, renderer.ledger(turn, end), renderer.closing_items(turn, end), output=text)
            self.store.turns.finish(turn, status, record, usage=turn.usage, mode=MyLease(h.owner), error=error, at=at)

        @rule(turn=turns)
        def redeliver(self, turn: str) -> None:
            """The turn's queue message again: runs a queued turn whole, settles a cancelled or
            lost one, or comes back later while a live lease holds it."""
            self._run_message(turn)

        def _run_message(self, turn: str) -> None:
            self.touched.add(turn)
            runner = TurnRunner(
                self.store,
                lambda t: HookModel(2),
                renderers=RENDERERS,
                lease_ms=LEASE_MS,
                owner=f"worker-{new_id('r')}",
                cadence=FAST,
            )
            try:
                runner.handle(turn)
            except LeaseHeld:
                pass

        @rule()
        def sweep(self) -> None:
            """The sweeper: in-flight turns nobody moves (queued too long, or a dead worker's
            lease expired) get their message again, at most once per window."""
            for shard in range(INFLIGHT_SHARDS):
                for turn in self.store.sweep.stale_turns(shard, queued_for_ms=300_000):
                    if self.store.sweep.mark_swept(turn, again_after_ms=1_200_000):
                        self._run_message(turn)

        @rule(seconds=st.sampled_from((1, LEASE_MS // 1000 + 1, 121, 301)))
        def time_passes(self, seconds: int) -> None:
            self.clock.advance(seconds=seconds)

        # -- cancels

        @rule(
            turn=turns,
            who=st.sampled_from(("creator", "tenant", "stranger", "other user")),
            via=st.sampled_from(("http", "queue")),
        )
        def cancel(self, turn: str, who: str, via: str) -> None:
            self._cancel(turn, who, via)

        @precondition(_some_open)
        @rule(data=st.data(), who=st.sampled_from(("creator", "tenant")), via=st.sampled_from(("http", "queue")))
        def cancel_open(self, data: st.DataObject, who: str, via: str) -> None:
            self._cancel(data.draw(st.sampled_from(self._open()), label="open turn"), who, via)

        def _cancel(self, turn: str, who: str, via: str) -> None:
            self.touched.add(turn)
            k = self.known[turn]
            tenant, user = {
                "creator": (k.tenant, k.end_user),
                "tenant": (k.tenant, None),
                "stranger": (STRANGER_TENANT, None),
                "other user": (k.tenant, "mallory"),
            }[who]
            if via == "http":
                scope = scopes.session(k.session) if k.session else scopes.STATELESS
                outcome, _ = self.store.turns.request_cancel(
                    turn, tenant=tenant, scope=scope, end_user=user, req=CancelRequest(source="api")
                )
            else:
                outcome = handle(self.store, CancelMessage(turn_id=turn, tenant=tenant, end_user=user))
            if who in ("stranger", "other user"):
                assert outcome is CancelOutcome.NOT_FOUND
            elif outcome in ACCEPTED:
                assert k.final is None, "a cancel was accepted for a turn that had already ended"
                k.cancel_accepted = True

        @rule(session=sessions, as_creator=st.booleans())
        def delete_session(self, session: str, as_creator: bool) -> None:
            tenant, user = self.session_owner[session]
            principal = Principal(tenant if as_creator else STRANGER_TENANT, (), "key", user)
            try:
                out = self.sessions_api.destroy_session(principal, session)
            except errors.NotFound:
                return
            assert as_creator
            cancelled = out["cancelled_response_id"]
            self.touched.update(k.id for k in self.known.values() if k.session == session)
            if cancelled:
                assert self.known[cancelled].final is None
                self.known[cancelled].cancel_accepted = True

        # -- what must hold after every step

        @invariant()
        def after_every_step(self) -> None:
            """One invariant, so the checks run in this order and only then forget the touched turns."""
            self.every_turn_ends_once_as_its_cancel_said_and_is_billed_at_most_once()
            self.a_session_holds_at_most_one_uncancelled_turn()
            self.touched.clear()

        def every_turn_ends_once_as_its_cancel_said_and_is_billed_at_most_once(self) -> None:
            for turn_id in self.touched:
                k = self.known[turn_id]
                head = self.store.turns.head(k.id)
                assert head is not None
                kinds = [e.type for e in self.store.turns.read_events(k.id, 0, head.seq)]
                ends = [i for i, t in enumerate(kinds) if t in TERMINAL_EVENTS]
                if head.terminal and not head.cancelled_before_start:
                    assert ends == [len(kinds) - 1], (k.id, kinds)
                else:
                    assert ends == [], (k.id, kinds)  # a queued cancel's event is written by its worker
                if head.terminal:
                    assert k.final in (None, head.status), (k.id, k.final, head.status)
                    k.final = head.status
                    assert not k.cancel_accepted or head.status is Status.CANCELLED, (k.id, head.status)
                debits = [e for e in self.store.ledger.entries(k.tenant, k.id) if e["kind"] == "debit"]
                assert len(debits) <= (0 if head.status is Status.CANCELLED else 1), (k.id, debits)
                assert self.store.turns.get_visible(k.id, tenant=STRANGER_TENANT) is None
                assert self.store.turns.get_visible(k.id, tenant=k.tenant, end_user="mallory") is None

        def a_session_holds_at_most_one_uncancelled_turn(self) -> None:
            for session in {self.known[t].session for t in self.touched} - {None}:
                live = []
                for k in self.known.values():
                    if k.session == session and (head := self.store.turns.head(k.id)) is not None:
                        if head.status not in TERMINAL_STATUSES and not head.cancel_requested:
                            live.append(k.id)
                assert len(live) <= 1, (session, live)

    run_state_machine_as_test(
        TurnMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            derandomize=not SOAK,
            # Steps run a real worker (its own thread, real time), so a failing example may not
            # replay exactly: in make test report the first failure as found, unshrunk.
            phases=list(Phase) if SOAK else [Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_random_interleavings_keep_every_turns_invariants(ddb_client: Any, template: Any) -> None:
    examples, steps = (400, 60) if SOAK else (20, 30)
    machine(ddb_client, template, examples=examples, steps=steps)
