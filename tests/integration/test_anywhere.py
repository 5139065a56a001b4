"""Cancel from anywhere on DynamoDB Local, plus what needs the real engine: a cancel by key
racing its start from two threads, the table's stream as the events function reads it, and a
bulk cancel's read cost, which is the tenant's in-flight turns whatever the table holds."""

from __future__ import annotations

import threading
from typing import Any

import boto3

from tests.cases.anywhere_cases import *  # noqa: F401,F403
from tests.cases.anywhere_cases import OTHER, bulk, by_key, claim_of, new_turn, runner
from tests.cases.fixtures import Env
from tests.cases.store_cases import HookModel, cancel
from tests.conftest import CapacityMeter
from turnstop.core.bulk import BulkRequest, BulkScope
from turnstop.core.turn import CancelOutcome, Status
from turnstop.idempotency.keys import Tombstone
from turnstop.idempotency.tombstones import ByTurn
from turnstop.store.live import LIVE_SHARDS
from turnstop.turn_events import terminal_event


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
            out["turn"] = new_turn(env, idem=claim_of(key))

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
    assert stopped.cancel_latency_ms is not None and stopped.cancel_latency_ms >= 40
    assert stopped.detail["usage"]["output_tokens"] >= 2 and stopped.detail["billed"] is False


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
