"""Cancel from anywhere, on moto (unit) and on DynamoDB Local (integration): the live index,
scoped bulk cancels and their pages, cancels by Idempotency-Key before the start, deadlines,
and what a finish records for the cancel events."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest

from tests.cases.fixtures import Env, only_on_dynamodb_local
from tests.cases.turns import TENANT, HookModel, cancel, events, ledger_kinds, runner, until_ended
from tests.conftest import CapacityMeter
from turnstop.cancels.bulk import BulkCancel, Page
from turnstop.core import errors, scopes
from turnstop.core.bulk import BulkRequest, BulkScope
from turnstop.core.ids import new_id
from turnstop.core.records import NewTurn
from turnstop.core.scopes import Scope
from turnstop.core.turn import CancelOutcome, CancelRequest, Status, Turn
from turnstop.dialects.sessions.renderer import SESSION_KIND, STATELESS_KIND, created_event
from turnstop.idempotency.bindings import KeyBinding
from turnstop.idempotency.keys import Tombstone, idempotency_pk
from turnstop.idempotency.tombstones import ByTurn
from turnstop.platform.settings import Settings
from turnstop.store import sessions
from turnstop.store.live import LIVE_SHARDS
from turnstop.store.transaction import Transaction
from turnstop.turn_events import terminal_event

OTHER = "t2"


def new_turn(
    env: Env,
    *,
    tenant: str = TENANT,
    session_id: str | None = None,
    thread_id: str | None = None,
    account_id: int | None = None,
    end_user: str | None = None,
    max_duration_ms: int | None = None,
    idem: KeyBinding | None = None,
    prompt: str = "Write a 10-word note",
) -> Turn:
    new = NewTurn(
        id=new_id("msg_" if session_id else "resp_"),
        kind=SESSION_KIND if session_id else STATELESS_KIND,
        tenant=tenant,
        scope=scopes.session(session_id) if session_id else scopes.STATELESS,
        grace_ms=120_000,
        input={"prompt": prompt},
        end_user=end_user,
        account_id=account_id,
        thread_id=thread_id,
        max_duration_ms=max_duration_ms,
    )
    return env.store.turns.start(new, created_event, idempotency=idem)


def live_ids(env: Env, scope: BulkScope, created_before: int | None = None, limit: int = 100) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        page, after = env.store.live.page(scope, created_before=created_before, after=after, limit=limit)
        ids += page
        if after is None:
            return ids


def bulk(env: Env, page_size: int = 3) -> tuple[BulkCancel, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    settings = Settings(table=env.store.table, bulk_cancel_page_size=page_size, bulk_cancel_concurrency=4)
    return BulkCancel(env.store, settings, send=sent.append, sleep=lambda s: None), sent


def run_chain(b: BulkCancel, sent: list[dict[str, Any]], first: Page) -> int:
    """Run a bulk cancel's pages the way the queue would, one message each; how many ran."""
    done = b.run_page(first)
    b.hand_on(done, redelivered=False)
    ran = 1
    while sent:
        page = Page.from_message(sent.pop(0))
        assert page is not None
        b.hand_on(b.run_page(page), redelivered=False)
        ran += 1
    return ran


# ---------------------------------------------------------------------------- the live index


def test_the_live_index_holds_a_tenants_in_flight_turns_and_only_those(env: Env) -> None:
    mine = [new_turn(env) for _ in range(6)]
    theirs = [new_turn(env, tenant=OTHER) for _ in range(3)]
    finished = mine.pop()
    cancel(env, finished.id)
    assert runner(env, HookModel(3)).handle(finished.id) == "cancelled"  # its finish takes it out
    assert sorted(live_ids(env, BulkScope(TENANT))) == sorted(t.id for t in mine)
    assert sorted(live_ids(env, BulkScope(OTHER))) == sorted(t.id for t in theirs)


def test_a_cancel_takes_its_turn_out_of_the_live_index_even_if_nothing_ever_finishes_it(env: Env) -> None:
    """A turn no worker will ever record (a chat action awaiting confirmation, cancelled) must
    not stay in the index for every later bulk cancel to meet; a turn born cancelled never
    enters it."""
    left = new_turn(env)
    flagged = new_turn(env)
    assert cancel(env, flagged.id) is CancelOutcome.CANCELLED
    by_key(env, "k-live")
    born = new_turn(env, idem=binding_of("k-live"))
    assert born.cancelled_before_start
    assert live_ids(env, BulkScope(TENANT)) == [left.id]


def test_a_sessions_or_threads_in_flight_turns_are_one_query(env: Env) -> None:
    session = env.store.sessions.create("sess_live1", TENANT, True, 3_600_000)
    in_session = new_turn(env, session_id=session.id)
    in_thread = [new_turn(env, thread_id="th-1") for _ in range(2)]
    [new_turn(env) for _ in range(3)]
    env.counter.reset()
    assert live_ids(env, BulkScope(TENANT, session_id=session.id)) == [in_session.id]
    assert env.counter.calls == ["Query"]
    env.counter.reset()
    assert sorted(live_ids(env, BulkScope(TENANT, thread_id="th-1"))) == sorted(t.id for t in in_thread)
    assert env.counter.calls == ["Query"]


def test_an_account_an_end_user_and_created_before_narrow_a_tenant(env: Env) -> None:
    early = new_turn(env, account_id=7, end_user="ann")
    env.clock.advance(seconds=5)
    late = new_turn(env, account_id=7)
    other_account = new_turn(env, account_id=8, end_user="ann")
    assert sorted(live_ids(env, BulkScope(TENANT, account_id=7))) == sorted([early.id, late.id])
    assert sorted(live_ids(env, BulkScope(TENANT, end_user="ann"))) == sorted([early.id, other_account.id])
    assert live_ids(env, BulkScope(TENANT, account_id=7), created_before=late.created_at) == [early.id]


def test_pages_of_a_tenant_follow_on_across_shards_without_repeats(env: Env) -> None:
    made = {new_turn(env).id for _ in range(9)}
    ids = live_ids(env, BulkScope(TENANT), limit=2)
    assert len(ids) == len(set(ids)) and set(ids) == made


# ---------------------------------------------------------------------------- bulk cancels


def test_a_bulk_cancel_stops_every_in_flight_turn_of_the_tenant_and_counts_each_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = [new_turn(env) for _ in range(5)]
    running = new_turn(env)
    env.store.turns.claim(running.id, "worker-a", 30_000)
    stopping = new_turn(env)
    assert cancel(env, stopping.id) is CancelOutcome.CANCELLED  # an earlier cancel took it out of the index
    finishing = new_turn(env, prompt="Write a 2-word note")
    theirs = [new_turn(env, tenant=OTHER) for _ in range(3)]
    read = env.store.live.page

    def then_one_finishes(*args: Any, **kw: Any) -> Any:  # between the page's read and its cancels
        found = read(*args, **kw)
        assert runner(env, HookModel(2)).handle(finishing.id) == "completed"
        return found

    monkeypatch.setattr(env.store.live, "page", then_one_finishes)
    b, sent = bulk(env, page_size=10)
    _, first = b.open("bulk-1", BulkRequest(BulkScope(TENANT), reason="billing stop", actor="ops"), "queue")
    assert run_chain(b, sent, first) == 1
    report = env.store.bulk.get("bulk-1")
    assert report is not None and report.status == "completed" and report.pages == 1
    assert report.counts == {"matched": 7, "cancelled": 6, "already_finished": 1, "failed": 0}
    for turn in [*queued, running]:
        head = env.store.turns.head(turn.id)
        assert head is not None and head.cancel_requested and head.cancel_batch == "bulk-1"
        assert (head.cancel_source, head.cancel_reason, head.cancel_actor) == ("queue", "billing stop", "ops")
    earlier = env.store.turns.head(stopping.id)
    assert earlier is not None and earlier.cancel_batch is None and earlier.cancel_source == "api"
    for turn in theirs:  # another tenant's turns are untouched
        head = env.store.turns.head(turn.id)
        assert head is not None and not head.cancel_requested and head.status is Status.QUEUED


def test_a_page_processed_again_never_counts_twice_and_never_forks_the_chain(env: Env) -> None:
    [new_turn(env) for _ in range(5)]
    b, sent = bulk(env, page_size=3)
    _, first = b.open("bulk-2", BulkRequest(BulkScope(TENANT)), "queue")
    done = b.run_page(first)
    b.hand_on(done, redelivered=False)
    # page 1's turns finish meanwhile: a redelivered page 1 still meets (and counts) the same ones
    for turn_id in done.counts.turn_ids["cancelled"]:
        assert runner(env, HookModel(2)).handle(turn_id) == "cancelled"
    again = b.run_page(first)
    assert again.counted is False and again.counts.cancelled == 3  # recognised by its cancel_batch
    b.hand_on(again, redelivered=True)  # a redelivery re-sends the next page (it may never have gone)
    assert len(sent) == 2 and sent[0] == sent[1]
    second = Page.from_message(sent[0])
    assert second is not None
    b.hand_on(b.run_page(second), redelivered=False)
    duplicate = b.run_page(second)
    b.hand_on(duplicate, redelivered=False)  # a duplicate of a counted page sends nothing
    assert duplicate.counted is False and len(sent) == 2
    report = env.store.bulk.get("bulk-2")
    assert report is not None and report.status == "completed"
    assert report.counts == {"matched": 5, "cancelled": 5, "already_finished": 0, "failed": 0}


def test_a_crash_between_the_cancels_and_the_count_is_counted_once_by_the_redelivery(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    [new_turn(env) for _ in range(3)]
    b, _ = bulk(env, page_size=10)
    _, first = b.open("bulk-3", BulkRequest(BulkScope(TENANT)), "queue")
    real_count = env.store.bulk.count

    def crash(*args: Any, **kw: Any) -> bool:
        raise errors.Retryable("the function died here")

    monkeypatch.setattr(env.store.bulk, "count", crash)
    with pytest.raises(errors.Retryable):
        b.run_page(first)
    monkeypatch.setattr(env.store.bulk, "count", real_count)
    assert b.run_page(first).counted  # the redelivered message: every turn is "already cancelling"
    report = env.store.bulk.get("bulk-3")
    assert report is not None and report.counts == {"matched": 3, "cancelled": 3, "already_finished": 0, "failed": 0}


def test_a_turn_whose_cancel_keeps_failing_is_counted_failed_and_the_counts_add_up(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = [new_turn(env) for _ in range(4)]
    stuck = turns[2].id
    real = env.store.turns.request_cancel

    def throttled(turn_id: str, **kw: Any) -> Any:
        if turn_id == stuck:
            raise errors.Retryable("throttled")
        return real(turn_id, **kw)

    monkeypatch.setattr(env.store.turns, "request_cancel", throttled)
    b, sent = bulk(env, page_size=10)
    _, first = b.open("bulk-4", BulkRequest(BulkScope(TENANT)), "admin")
    run_chain(b, sent, first)
    report = env.store.bulk.get("bulk-4")
    assert report is not None and report.counts == {"matched": 4, "cancelled": 3, "already_finished": 0, "failed": 1}


def test_a_bulk_cancel_costs_one_cancel_write_per_turn(env: Env) -> None:
    [new_turn(env) for _ in range(6)]
    [new_turn(env, tenant=OTHER) for _ in range(20)]  # other tenants' turns are never read
    b, _ = bulk(env, page_size=10)
    _, first = b.open("bulk-5", BulkRequest(BulkScope(TENANT)), "admin")
    env.counter.reset()
    b.run_page(first)
    writes = env.counter.writes
    assert writes.count("UpdateItem") == 6 + 1  # one cancel per turn, and the page's count
    assert writes.count("PutItem") == 1  # the page's turns, kept
    assert env.counter.reads == ["Query"] * 4  # the tenant's four shards of the live index


# ---------------------------------------------------------------------------- cancel before start


def by_key(env: Env, key: str, scope: Scope = scopes.STATELESS, end_user: str | None = None) -> Any:
    return env.store.tombstones.cancel(TENANT, key, scope=scope, end_user=end_user, req=CancelRequest(reason="stop"))


def binding_of(key: str, body: str = "{}") -> KeyBinding:
    return KeyBinding(TENANT, key, KeyBinding.fingerprint_of("POST", "/v1/responses", body))


def test_a_cancel_by_key_before_the_start_makes_the_start_born_cancelled(env: Env) -> None:
    tomb = by_key(env, "k-before")
    assert isinstance(tomb, Tombstone)
    turn = new_turn(env, idem=binding_of("k-before"))
    assert turn.cancelled_before_start and turn.born_cancelled and turn.cancel_reason == "stop"
    model = HookModel(5)
    assert runner(env, model).handle(turn.id) == "cancelled"  # the worker records it, runs nothing
    assert not model.closed  # the model was never called
    assert [e.type for e in events(env, turn.id)] == ["response.created", "response.cancelled"]
    assert ledger_kinds(env, turn.id) == []
    with pytest.raises(errors.IdempotentReplay) as replay:  # the key is now bound to that turn
        new_turn(env, idem=binding_of("k-before"))
    assert replay.value.turn_id == turn.id
    again = by_key(env, "k-before")  # a later cancel by the key meets the turn
    assert isinstance(again, ByTurn) and again.outcome is CancelOutcome.ALREADY_TERMINAL


def test_a_cancel_by_key_after_the_start_cancels_that_turn(env: Env) -> None:
    turn = new_turn(env, idem=binding_of("k-after"))
    found = by_key(env, "k-after")
    assert isinstance(found, ByTurn) and found.turn_id == turn.id and found.outcome is CancelOutcome.CANCELLED
    head = env.store.turns.head(turn.id)
    assert head is not None and head.status is Status.CANCELLED and not head.born_cancelled


def test_a_cancel_by_key_is_one_write_either_way_and_never_reads_first(env: Env) -> None:
    env.counter.reset()
    assert isinstance(by_key(env, "k-one"), Tombstone)
    assert env.counter.calls == ["PutItem"]
    assert isinstance(by_key(env, "k-one"), Tombstone)  # asked again: the same tombstone, nothing written
    new_turn(env, idem=binding_of("k-two"))
    env.counter.reset()
    assert isinstance(by_key(env, "k-two"), ByTurn)
    assert env.counter.calls == ["PutItem", "UpdateItem"]  # the refused put names the turn (ALL_OLD)


def test_a_tombstone_of_another_scope_or_end_user_lets_the_start_run(env: Env) -> None:
    by_key(env, "k-tasks", scope=scopes.TASKS)
    by_key(env, "k-ann", end_user="ann")
    plain = new_turn(env, idem=binding_of("k-tasks"))
    bob = new_turn(env, idem=binding_of("k-ann"), end_user="bob")
    assert not plain.cancel_requested and not bob.cancel_requested
    assert runner(env, HookModel(2)).handle(plain.id) == "completed"
    ann = new_turn(env, idem=binding_of("k-ann-2"), end_user="ann")
    assert not ann.cancel_requested  # another key


def test_a_tombstone_expires_with_the_keys_window(env: Env) -> None:
    by_key(env, "k-old")
    env.clock.advance(seconds=24 * 3600 + 1)
    turn = new_turn(env, idem=binding_of("k-old"))
    assert not turn.cancel_requested


def test_a_session_turn_born_cancelled_takes_no_slot(env: Env) -> None:
    session = env.store.sessions.create("sess_born1", TENANT, True, 3_600_000)
    by_key(env, "k-sess", scope=scopes.session(session.id))
    born = new_turn(env, session_id=session.id, idem=binding_of("k-sess"))
    assert born.cancelled_before_start
    running = new_turn(env, session_id=session.id)  # the session is free for the next message
    assert runner(env, HookModel(1)).handle(born.id) == "cancelled"
    assert not running.cancel_requested


def test_a_cancel_by_key_in_a_session_writes_its_tombstone_only_if_the_session_is_the_callers(env: Env) -> None:
    session = env.store.sessions.create("sess_tomb1", TENANT, True, 3_600_000)

    def by_key_in(tenant: str, end_user: str | None, key: str) -> Any:
        def own(tx: Transaction, now: int) -> None:
            sessions.check_live(tx, session.id, tenant, end_user, now)

        return env.store.tombstones.cancel(
            tenant, key, scope=scopes.session(session.id), end_user=end_user, req=CancelRequest(), check=own
        )

    assert by_key_in(OTHER, None, "k-theirs") is None  # another tenant names the session: nothing written
    assert env.store.db.get(idempotency_pk(OTHER, "k-theirs"), "IDEM") is None
    assert by_key_in(TENANT, "mallory", "k-mallory") is None  # nor does another end user of a session
    assert env.store.db.get(idempotency_pk(TENANT, "k-mallory"), "IDEM") is None
    assert isinstance(by_key_in(TENANT, None, "k-mine"), Tombstone)
    turn = new_turn(env, session_id=session.id, idem=binding_of("k-mine"))
    assert turn.born_cancelled
    found = by_key_in(TENANT, None, "k-mine")  # after the start: the key names the turn
    assert isinstance(found, ByTurn) and found.turn_id == turn.id


# ---------------------------------------------------------------------------- deadlines


def test_a_deadline_cancels_a_running_turn_while_its_model_is_silent(env: Env) -> None:
    turn = new_turn(env, max_duration_ms=1_000)

    def silent_past_the_deadline() -> None:
        env.clock.advance(seconds=2)
        until_ended(env, turn.id)  # says nothing more: the keeper alone notices

    assert runner(env, HookModel(10, hooks={3: silent_past_the_deadline})).handle(turn.id) == "cancelled"
    head = env.store.turns.get(turn.id)
    assert head is not None and head.status is Status.CANCELLED
    assert (head.cancel_source, head.cancel_actor) == ("deadline", "turnstop")
    assert head.cancel_observed_at is not None and head.cancel_observed_at >= head.cancel_requested_at  # type: ignore[operator]
    evs = events(env, turn.id)
    assert sum(e.type == "response.delta" for e in evs) == 3 and evs[-1].type == "response.cancelled"
    assert ledger_kinds(env, turn.id) == []


def test_a_turn_queued_past_its_deadline_never_starts(env: Env) -> None:
    turn = new_turn(env, max_duration_ms=1_000)
    env.clock.advance(seconds=2)
    model = HookModel(5)
    assert runner(env, model).handle(turn.id) == "cancelled"
    assert not model.closed
    head = env.store.turns.get(turn.id)
    assert head is not None and head.cancel_source == "deadline" and head.started_at is None
    assert [e.type for e in events(env, turn.id)] == ["response.created", "response.cancelled"]


def test_a_cancel_before_the_deadline_stands(env: Env) -> None:
    turn = new_turn(env, max_duration_ms=1_000)

    def cancel_then_pass_the_deadline() -> None:
        cancel(env, turn.id)
        env.clock.advance(seconds=2)
        until_ended(env, turn.id)

    assert runner(env, HookModel(10, hooks={2: cancel_then_pass_the_deadline})).handle(turn.id) == "cancelled"
    head = env.store.turns.head(turn.id)
    assert head is not None and head.cancel_source == "api"


# ---------------------------------------------------------------------------- what the events carry


def raw_head(env: Env, turn_id: str) -> dict[str, Any]:
    return env.client.get_item(TableName=env.store.table, Key={"pk": {"S": f"TURN#{turn_id}"}, "sk": {"S": "TURN"}})[
        "Item"
    ]


def test_a_terminal_transition_is_one_event_with_the_cancel_and_its_latency(env: Env) -> None:
    turn = new_turn(env, end_user="ann", account_id=3)
    cancel(env, turn.id)
    before = raw_head(env, turn.id)
    env.clock.advance(ms=250)  # the worker records the queued cancel a quarter of a second later
    assert runner(env, HookModel(3)).handle(turn.id) == "cancelled"
    after = raw_head(env, turn.id)
    event = terminal_event({"dynamodb": {"OldImage": before, "NewImage": after, "SequenceNumber": "1"}})
    assert event is not None and event.detail_type == "turn.cancelled"
    d = event.detail
    assert (d["tenant"], d["turn_id"], d["dialect"], d["status"], d["source"], d["reason"]) == (
        TENANT,
        turn.id,
        "sessions",
        "cancelled",
        "api",
        "test",
    )
    assert (d["end_user"], d["account_id"], d["billed"], d["cancel_latency_ms"]) == ("ann", 3, False, 250)
    assert d["cancel_requested_at"] and d["cancel_observed_at"] and d["event_id"] == f"{turn.id}.cancelled"
    assert d["usage"] == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    # the cancel itself (queued → queued with a flag) and any other record are no event
    assert terminal_event({"dynamodb": {"OldImage": before, "NewImage": before}}) is None
    assert terminal_event({"dynamodb": {"NewImage": after}}) is None


def test_a_completed_turn_is_billed_in_its_event_and_has_no_cancel(env: Env) -> None:
    turn = new_turn(env)
    before = raw_head(env, turn.id)
    assert runner(env, HookModel(4)).handle(turn.id) == "completed"
    event = terminal_event({"dynamodb": {"OldImage": before, "NewImage": raw_head(env, turn.id)}})
    assert event is not None and event.detail_type == "turn.completed"
    assert event.detail["billed"] is True and event.detail["source"] is None and event.cancel_latency_ms is None
    assert event.detail["usage"]["output_tokens"] == 4


# ---------------------------------------------------------------- on DynamoDB Local only


@only_on_dynamodb_local
def test_a_cancel_by_key_racing_its_start_always_ends_the_turn_cancelled(env: Env) -> None:
    for i in range(12):
        key = f"race-{i}"
        go = threading.Barrier(2)
        out: dict[str, Any] = {}

        def cancel_side(key: str = key, go: threading.Barrier = go, out: dict[str, Any] = out) -> None:
            go.wait()
            out["cancel"] = by_key(env, key)

        def start_side(key: str = key, go: threading.Barrier = go, out: dict[str, Any] = out) -> None:
            go.wait()
            out["turn"] = new_turn(env, idem=binding_of(key))

        threads = [threading.Thread(target=cancel_side), threading.Thread(target=start_side)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        turn = out["turn"]
        if isinstance(out["cancel"], Tombstone):  # the tombstone landed first: born cancelled
            assert turn.born_cancelled and turn.cancelled_before_start
        else:  # the start landed first: the key named it, and its one cancel write stopped it
            assert isinstance(out["cancel"], ByTurn) and out["cancel"].turn_id == turn.id
            assert out["cancel"].outcome is CancelOutcome.CANCELLED and not turn.born_cancelled
        assert runner(env, HookModel(3)).handle(turn.id) == "cancelled"


@only_on_dynamodb_local
def test_the_tables_stream_carries_one_terminal_event_per_turn(env: Env, local_store: Any) -> None:
    streams = boto3.client("dynamodbstreams", endpoint_url=local_store.dynamodb_endpoint, region_name="us-east-1")
    done = new_turn(env, prompt="Write a 3-word note")
    queued_cancel = new_turn(env)
    running_cancel = new_turn(env)
    assert runner(env, HookModel(3)).handle(done.id) == "completed"
    cancel(env, queued_cancel.id)
    assert runner(env, HookModel(3)).handle(queued_cancel.id) == "cancelled"

    def cancel_at_two() -> None:
        cancel(env, running_cancel.id)
        env.clock.advance(ms=40)

    assert runner(env, HookModel(9, hooks={2: cancel_at_two})).handle(running_cancel.id) == "cancelled"
    arn = env.client.describe_table(TableName=env.store.table)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        records += streams.get_records(ShardIterator=it["ShardIterator"])["Records"]
    found = [e for r in records if (e := terminal_event(r))]
    assert sorted((e.turn.id, e.detail_type) for e in found) == sorted(
        [(done.id, "turn.completed"), (queued_cancel.id, "turn.cancelled"), (running_cancel.id, "turn.cancelled")]
    )
    stopped = next(e for e in found if e.turn.id == running_cancel.id)
    head = env.store.turns.head(running_cancel.id)
    assert head is not None and head.cancel_requested_at is not None and head.cancel_observed_at is not None
    # the cancel's latency as the turn recorded it: the keeper may see the flag before the hook
    # moves the clock on (its own Python thread), so the bound is the recorded times, not 40 ms
    assert stopped.cancel_latency_ms == head.cancel_observed_at - head.cancel_requested_at >= 0
    assert stopped.detail["usage"]["output_tokens"] >= 2 and stopped.detail["billed"] is False


@only_on_dynamodb_local
def test_a_bulk_cancel_reads_only_the_tenants_in_flight_turns(env: Env) -> None:
    """Its reads are the tenant's in-flight turns in the live index, not the table: with ten
    times as many turns of other tenants around it, it makes the same calls, reads at most
    one unit's half per shard (a shard of a few small index items), and writes the same."""

    def cost_of(others: int, tag: str) -> tuple[list[str], float, float]:
        for _ in range(others):
            new_turn(env, tenant=f"{OTHER}-{tag}")
        mine = [new_turn(env, tenant=f"bulk-{tag}") for _ in range(8)]
        b, _ = bulk(env, page_size=100)
        _, first = b.open(f"bulk-{tag}", BulkRequest(BulkScope(f"bulk-{tag}")), "admin")
        meter = CapacityMeter(env.client)
        env.counter.reset()
        try:
            assert b.run_page(first).counts.cancelled == len(mine)
            reads = [op for op, u in meter.calls if op == "Query" and set(u) <= {"table", "gsi4"}]
            index_reads = sum(u.get("gsi4", 0.0) for op, u in meter.calls if op == "Query")
            writes = sum(u.get("table", 0.0) for op, u in meter.calls if op == "UpdateItem")
        finally:
            meter.close()
        assert env.counter.reads == reads  # every read is a Query of the live index
        return env.counter.reads, index_reads, writes

    (few_reads, few_units, few_writes), (many_reads, many_units, many_writes) = cost_of(4, "few"), cost_of(40, "many")
    assert few_reads == many_reads == ["Query"] * LIVE_SHARDS
    # an empty shard may cost nothing, so the units are bounded, not equal
    assert few_units <= LIVE_SHARDS * 0.5 and many_units <= LIVE_SHARDS * 0.5
    assert few_writes == many_writes == 8 * 1 + 1  # one unit per cancel, and the report's count


@only_on_dynamodb_local
def test_the_stopped_turns_are_out_of_the_live_index_once_they_finish(env: Env) -> None:
    turns = [new_turn(env) for _ in range(3)]
    b, sent = bulk(env, page_size=10)
    _, first = b.open("bulk-out", BulkRequest(BulkScope("t1")), "queue")
    b.run_page(first)
    for turn in turns:
        assert runner(env, HookModel(2)).handle(turn.id) == "cancelled"
        head = env.store.turns.head(turn.id)
        assert head is not None and head.status is Status.CANCELLED
    assert env.store.live.page(BulkScope("t1"), created_before=None, after=None, limit=10) == ([], None)
    again = env.store.bulk.open("bulk-out", BulkRequest(BulkScope("t1")), "queue")  # a redelivered first message
    assert again.status == "completed" and again.counts["cancelled"] == 3
