"""Store and runtime behaviour, run on moto (unit) and on DynamoDB Local (integration)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cases.fixtures import Env, only_on_dynamodb_local
from tests.cases.turns import (
    LEASE_MS,
    TENANT,
    HookModel,
    cancel,
    cancel_then_go_quiet,
    die_after_two_words,
    events,
    eventually,
    ledger_kinds,
    publish,
    runner,
    start,
    until_ended,
)
from tests.conftest import CapacityMeter
from turnstop.core import errors, scopes
from turnstop.core.errors import CommitRejected, IdempotentReplay
from turnstop.core.turn import CancelOutcome, Status, Turn
from turnstop.dialects.sessions.renderer import RENDERERS
from turnstop.http.sse import follow
from turnstop.idempotency.bindings import KeyBinding
from turnstop.providers.base import Chunk
from turnstop.runtime.keeper import Cadence
from turnstop.runtime.model import ScriptedModel
from turnstop.runtime.runner import LeaseHeld, TurnRunner
from turnstop.store import Store
from turnstop.store.chunks import chunk_bytes

# ---------------------------------------------------------------------------- the happy path


def test_a_completed_turn_publishes_every_word_and_bills_once(env: Env) -> None:
    turn = start(env)
    assert runner(env, ScriptedModel(0)).handle(turn.id) == "completed"
    evs = events(env, turn.id)
    assert [e.type for e in evs] == ["response.created"] + ["response.delta"] * 10 + ["response.completed"]
    assert [e.seq for e in evs] == list(range(1, 13))
    assert evs[-1].data["usage"]["output_tokens"] == 10
    assert ledger_kinds(env, turn.id) == ["debit", "usage"]
    # a redelivered message for a finished turn changes nothing
    assert runner(env, ScriptedModel(0), owner="worker-b").handle(turn.id) == "already_final"
    assert len(events(env, turn.id)) == 12


# ---------------------------------------------------------------------------- cancel outcomes


def test_cancelling_a_queued_turn_cancels_it_at_once_and_no_work_starts(env: Env) -> None:
    turn = start(env)
    assert cancel(env, turn.id) is CancelOutcome.CANCELLED
    head = env.store.turns.get(turn.id)
    assert head is not None and head.status is Status.CANCELLED
    model = HookModel(5)
    assert runner(env, model).handle(turn.id) == "cancelled"  # the worker records it, runs nothing
    evs = events(env, turn.id)
    assert [e.type for e in evs] == ["response.created", "response.cancelled"]
    assert ledger_kinds(env, turn.id) == []  # cancelled: no usage record, no debit
    assert cancel(env, turn.id) is CancelOutcome.ALREADY_TERMINAL


def test_a_reader_sees_the_terminal_event_of_a_queued_cancel_before_any_worker_does(env: Env) -> None:
    turn = start(env)
    cancel(env, turn.id)
    head = env.store.turns.get(turn.id)
    assert head is not None
    frames = list(
        follow(env.store, head, renderer=RENDERERS[head.kind], after=0, poll_ms=1, keepalive_s=60, sleep=lambda s: None)
    )
    assert [f.split("\n")[1] for f in frames] == ["event: response.created", "event: response.cancelled"]
    runner(env, HookModel(5)).handle(turn.id)
    # what the worker wrote later is the same event, at the same seq, as what the reader derived
    assert frames[1].startswith("id: 2\n") and events(env, turn.id)[1].seq == 2


def test_cancelling_a_running_turn_ends_it_cancelled_with_what_was_emitted_and_bills_nothing(env: Env) -> None:
    turn = start(env)
    seen: dict[str, CancelOutcome] = {}
    go_quiet = cancel_then_go_quiet(env, turn.id)
    model = HookModel(10, hooks={4: lambda: seen.setdefault("first", go_quiet())})
    assert runner(env, model).handle(turn.id) == "cancelled"
    assert seen["first"] is CancelOutcome.CANCELLING
    evs = events(env, turn.id)
    assert [e.type for e in evs][-1] == "response.cancelled"
    assert sum(e.type == "response.delta" for e in evs) == 4  # words 0-3, emitted before the cancel
    assert evs[-1].data["usage"]["output_tokens"] == 4 and evs[-1].data["billed"] is False
    assert model.closed  # told to stop, it let go of its call
    # the seed: a cancelled stream writes neither the usage record nor the debit; the usage
    # at stop rides on the terminal event (above) for the client
    assert ledger_kinds(env, turn.id) == []


def test_a_second_cancel_while_the_first_propagates_is_already_cancelling(env: Env) -> None:
    turn = start(env)
    env.store.turns.claim(turn.id, "worker-a", LEASE_MS)
    assert cancel(env, turn.id) is CancelOutcome.CANCELLING
    assert cancel(env, turn.id) is CancelOutcome.ALREADY_CANCELLING


def test_cancel_after_the_grace_window_is_not_found(env: Env) -> None:
    turn = start(env)
    runner(env, ScriptedModel(0)).handle(turn.id)
    env.clock.advance(seconds=119)
    assert cancel(env, turn.id) is CancelOutcome.ALREADY_TERMINAL
    env.clock.advance(seconds=1)
    assert cancel(env, turn.id) is CancelOutcome.NOT_FOUND


def test_another_tenants_or_scopes_turn_is_not_found_and_unchanged(env: Env) -> None:
    turn = start(env)
    assert cancel(env, turn.id, tenant="intruder") is CancelOutcome.NOT_FOUND
    assert cancel(env, turn.id, scope=scopes.session("sess_other")) is CancelOutcome.NOT_FOUND
    assert cancel(env, "resp_doesnotexist") is CancelOutcome.NOT_FOUND
    head = env.store.turns.get(turn.id)
    assert head is not None and head.status is Status.QUEUED and not head.cancel_requested


# ---------------------------------------------------------------------------- cost of the hot paths


def test_a_publish_is_one_chunk_and_one_head_update_however_many_events_it_carries(env: Env) -> None:
    turn = env.store.turns.claim(start(env).id, "worker-a", LEASE_MS)
    env.counter.reset()
    turn = publish(env, turn, "worker-a", *[f"w{i} " for i in range(50)])
    assert env.counter.calls == ["PutItem", "UpdateItem"]  # no read, no transaction
    assert [e.data["delta"] for e in events(env, turn.id)[1:]] == [f"w{i} " for i in range(50)]
    cancel(env, turn.id)
    env.counter.reset()
    with pytest.raises(CommitRejected) as refused:  # the head's condition is the cancel check
        publish(env, turn, "worker-a", "late ")
    assert env.counter.calls == ["PutItem", "UpdateItem"]  # the refusal says why: no read needed
    assert refused.value.old is not None and refused.value.old.cancel_requested
    assert len(events(env, turn.id)) == 51  # the refused chunk is beyond the head's seq: invisible


def test_a_cancel_request_costs_one_write_and_no_read(env: Env) -> None:
    turn = start(env)
    env.store.turns.claim(turn.id, "worker-a", LEASE_MS)
    for expected in (CancelOutcome.CANCELLING, CancelOutcome.ALREADY_CANCELLING):
        env.counter.reset()
        assert cancel(env, turn.id) is expected
        assert env.counter.calls == ["UpdateItem"]


def test_a_turns_writes_are_per_turn_not_per_step(env: Env) -> None:
    turn = start(env, "Write a 300-word note")
    env.counter.reset()
    # nothing due while 300 words stream, however slow a loaded machine makes them: no flush by
    # time (60 s) nor by size (300 deltas weigh about 18 KB, more than the default 16 KiB, so a
    # keeper that woke before the model's end was recorded flushed once), no renewal (a write
    # per lease third, not per step)
    slow = Cadence(flush_ms=60_000, flush_bytes=1 << 30, check_ms=60_000, lease_ms=600_000)
    assert runner(env, ScriptedModel(0), cadence=slow).handle(turn.id) == "completed"
    # claim, its request, and the finish carrying every event: three calls for 300 words
    assert env.counter.calls == ["UpdateItem", "GetItem", "TransactWriteItems"], env.counter.calls
    assert sum(e.type == "response.delta" for e in events(env, turn.id)) == 300


def test_a_flush_by_size_comes_before_the_flush_interval_and_is_per_size_not_per_step(env: Env) -> None:
    turn = start(env, "Write a 300-word note")
    env.counter.reset()
    every_4k = Cadence(flush_ms=60_000, flush_bytes=4096, check_ms=60_000, lease_ms=600_000)

    def a_flush_landed() -> None:  # the model's last word waits for the keeper's flush by size
        eventually(lambda: "PutItem" in env.counter.calls, "a flush by size")

    assert runner(env, HookModel(300, hooks={299: a_flush_landed}), cadence=every_4k).handle(turn.id) == "completed"
    calls = env.counter.calls
    flushes = calls[2:-1]
    assert calls[:2] == ["UpdateItem", "GetItem"] and calls[-1] == "TransactWriteItems", calls
    assert flushes == ["PutItem", "UpdateItem"] * (len(flushes) // 2) and flushes, calls
    # each flush waited for 4 KiB: at most one per 4 KiB emitted, never one per word
    emitted = chunk_bytes(events(env, turn.id))
    assert len(flushes) // 2 <= emitted // 4096, (len(flushes), emitted)


def test_the_cancel_check_is_one_small_read_and_a_publish_replaces_it(env: Env) -> None:
    turn = start(env)
    checks: list[list[str]] = []

    def quiet_then_cancel() -> None:  # the model is silent: the keeper looks at the flag
        env.counter.reset()
        deadline = time.monotonic() + 5
        while env.counter.reads.count("GetItem") < 3:
            assert time.monotonic() < deadline, "no cancel check while the model was quiet"
            time.sleep(0.002)
        checks.append(list(env.counter.calls))
        cancel(env, turn.id)
        until_ended(env, turn.id)

    assert runner(env, HookModel(3, hooks={2: quiet_then_cancel})).handle(turn.id) == "cancelled"
    looked = [c for c in checks[0] if c == "GetItem"]
    assert len(looked) >= 3 and set(checks[0]) <= {"GetItem", "PutItem", "UpdateItem"}


# ---------------------------------------------------------------------------- races


def test_after_a_cancel_is_accepted_a_stream_gets_only_the_words_written_before_the_keepers_next_check(
    env: Env,
) -> None:
    """What a live reader may see between the cancel's answer and the cancelled event: the words
    the model wrote until the keeper's first look at the flag (a cancel check, or a publish or
    renewal refused by it) made after the cancel landed, never more. Here the model writes one
    word per keeper look: one word before any look, one after a look that was already under way
    when the cancel landed (it read the head before the flag), and none after the next: at most
    two (docs/sessions.md)."""
    turn = start(env, "Write a 10-word note")
    looks: list[int] = []

    def keeper_looks() -> int:
        return sum(c in ("GetItem", "UpdateItem") for c in env.counter.calls)

    def accept_cancel() -> None:
        assert cancel(env, turn.id) is CancelOutcome.CANCELLING
        looks.append(keeper_looks())

    def after_the_next_look() -> None:  # a word only once the keeper looked again (or ended the turn)
        eventually(lambda: keeper_looks() > looks[-1] or "TransactWriteItems" in env.counter.calls, "a look")
        looks.append(keeper_looks())

    env.counter.reset()
    model = HookModel(10, hooks={4: accept_cancel, **{i: after_the_next_look for i in range(5, 10)}})
    assert runner(env, model).handle(turn.id) == "cancelled"
    stream = events(env, turn.id)
    deltas = [e.data["delta"] for e in stream if e.type == "response.delta"]
    assert deltas[:4] == ["w0 ", "w1 ", "w2 ", "w3 "] and len(deltas) - 4 <= 2, deltas
    # and the stream ends with the cancelled event, whose usage counts every word it carried
    assert stream[-1].type == "response.cancelled" and stream[-1].data["usage"]["output_tokens"] == len(deltas)


def test_cancel_landing_after_the_last_word_but_before_completion_wins(env: Env) -> None:
    turn = start(env)
    answers: list[CancelOutcome] = []
    model = HookModel(5, hooks={5: lambda: answers.append(cancel(env, turn.id))})
    assert runner(env, model).handle(turn.id) == "cancelled"
    assert answers == [CancelOutcome.CANCELLING]
    head = env.store.turns.get(turn.id)
    assert head is not None and head.status is Status.CANCELLED
    assert ledger_kinds(env, turn.id) == []  # cancelled: no usage record, no debit


def test_completion_that_lands_first_wins_and_cancel_says_so(env: Env) -> None:
    turn = start(env)
    runner(env, ScriptedModel(0)).handle(turn.id)
    assert cancel(env, turn.id) is CancelOutcome.ALREADY_TERMINAL
    head = env.store.turns.get(turn.id)
    assert head is not None and head.status is Status.COMPLETED and not head.cancel_requested


def test_cancel_versus_failure_ends_cancelled_when_the_cancel_came_first(env: Env) -> None:
    turn = start(env)
    model = HookModel(6, hooks={3: lambda: cancel(env, turn.id)}, fail_at=3)
    assert runner(env, model).handle(turn.id) == "cancelled"
    assert events(env, turn.id)[-1].type == "response.cancelled"


def test_a_failing_model_fails_the_turn_and_bills_nothing(env: Env) -> None:
    turn = start(env)
    assert runner(env, HookModel(6, fail_at=2)).handle(turn.id) == "failed"
    evs = events(env, turn.id)
    assert evs[-1].type == "response.failed" and evs[-1].data["error"]["code"] == "model_error"
    assert ledger_kinds(env, turn.id) == ["usage"]
    assert cancel(env, turn.id) is CancelOutcome.ALREADY_TERMINAL


# ---------------------------------------------------------------------------- worker loss


def test_a_redelivered_message_while_the_lease_is_alive_comes_back_later(env: Env) -> None:
    turn = start(env)
    die_after_two_words(env, turn)
    model = HookModel(5)
    with pytest.raises(LeaseHeld):
        runner(env, model, owner="worker-b").handle(turn.id)


def test_a_lost_worker_is_finalized_failed_by_the_redelivered_message_never_run_twice(env: Env) -> None:
    turn = start(env)
    die_after_two_words(env, turn)
    env.clock.advance(seconds=31)
    model = HookModel(5)
    assert runner(env, model, owner="worker-b").handle(turn.id) == "failed"
    evs = events(env, turn.id)
    assert [e.type for e in evs] == ["response.created", "response.delta", "response.delta", "response.failed"]
    assert evs[-1].data["error"]["code"] == "worker_lost"
    assert model.closed is False  # the model never ran again
    assert ledger_kinds(env, turn.id) == ["usage"]


def test_a_lost_worker_with_a_cancel_requested_ends_cancelled(env: Env) -> None:
    turn = start(env)
    die_after_two_words(env, turn)
    assert cancel(env, turn.id) is CancelOutcome.CANCELLING
    env.clock.advance(seconds=31)
    assert runner(env, HookModel(5), owner="worker-b").handle(turn.id) == "cancelled"
    evs = events(env, turn.id)
    # it ends with what the lost worker had committed: two words, billed nothing
    assert [e.type for e in evs] == ["response.created", "response.delta", "response.delta", "response.cancelled"]
    assert evs[-1].data["usage"]["output_tokens"] == 2 and evs[-1].data["billed"] is False


def test_a_cancel_landing_while_a_lost_worker_is_being_finalized_wins(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    turn = start(env)
    die_after_two_words(env, turn)
    env.clock.advance(seconds=31)
    answers: list[CancelOutcome] = []
    claim = env.store.turns.claim

    def claim_then_cancel(*args: Any, **kwargs: Any) -> Turn:
        try:
            return claim(*args, **kwargs)
        finally:  # the redelivered message saw "lease expired, no flag"; now the cancel lands
            answers.append(cancel(env, turn.id))

    monkeypatch.setattr(env.store.turns, "claim", claim_then_cancel)
    assert runner(env, HookModel(5), owner="worker-b").handle(turn.id) == "cancelled"
    assert answers == [CancelOutcome.CANCELLING]
    assert events(env, turn.id)[-1].type == "response.cancelled"
    assert ledger_kinds(env, turn.id) == []  # cancelled: no usage record, no debit


def test_a_zombie_worker_cannot_write_after_its_turn_was_finalized(env: Env) -> None:
    turn = start(env)
    claimed = env.store.turns.claim(turn.id, "worker-a", LEASE_MS)
    env.clock.advance(seconds=31)
    runner(env, HookModel(5), owner="worker-b").handle(turn.id)
    with pytest.raises(CommitRejected):
        publish(env, claimed, "worker-a", "late ")
    evs = events(env, turn.id)
    assert [e.type for e in evs] == ["response.created", "response.failed"]  # the late chunk is never read


# ---------------------------------------------------------------------------- sessions and idempotency


def test_a_session_runs_one_turn_at_a_time(env: Env) -> None:
    env.store.sessions.create("sess_a", TENANT, True, 3_600_000)
    first = start(env, session_id="sess_a")
    with pytest.raises(errors.Conflict):
        start(env, session_id="sess_a")
    runner(env, ScriptedModel(0)).handle(first.id)
    second = start(env, session_id="sess_a")
    assert second.id != first.id


def test_a_deleted_or_foreign_session_takes_no_new_turns(env: Env) -> None:
    env.store.sessions.create("sess_b", TENANT, True, 3_600_000)
    with pytest.raises(errors.NotFound):
        start(env, session_id="sess_b", tenant="intruder")
    env.store.sessions.destroy("sess_b", TENANT)
    with pytest.raises(errors.NotFound):
        start(env, session_id="sess_b")
    with pytest.raises(errors.NotFound):
        env.store.sessions.destroy("sess_b", TENANT)


def test_an_idempotency_key_binds_one_turn_and_rejects_another_body(env: Env) -> None:
    first = start(env, idem=KeyBinding(TENANT, "k-1", "body-a"))
    with pytest.raises(IdempotentReplay) as replay:
        start(env, idem=KeyBinding(TENANT, "k-1", "body-a"))
    assert replay.value.turn_id == first.id
    with pytest.raises(errors.IdempotencyMismatch):
        start(env, idem=KeyBinding(TENANT, "k-1", "body-b"))
    # other tenants have their own key space; after 24 h the key is free again
    start(env, tenant="t2", idem=KeyBinding("t2", "k-1", "body-b"))
    env.clock.advance(seconds=24 * 3600)
    third = start(env, idem=KeyBinding(TENANT, "k-1", "body-b"))
    assert third.id != first.id


def test_a_reader_replays_after_its_cursor_and_stops_at_the_terminal_event(env: Env) -> None:
    turn = start(env)
    cancel_after = HookModel(6, hooks={3: lambda: cancel(env, turn.id)})
    runner(env, cancel_after).handle(turn.id)
    head = env.store.turns.get(turn.id)
    assert head is not None
    frames = list(
        follow(env.store, head, renderer=RENDERERS[head.kind], after=2, poll_ms=1, keepalive_s=60, sleep=lambda s: None)
    )
    ids = [int(f.split("\n")[0][4:]) for f in frames]
    assert ids == list(range(3, head.seq + 1))
    assert frames[-1].split("\n")[1] == "event: response.cancelled"


def test_a_reader_sends_keepalives_on_long_gaps(env: Env) -> None:
    turn = start(env)
    head = env.store.turns.get(turn.id)
    assert head is not None
    ticks = iter(range(0, 10_000, 10))
    store: Store = env.store
    frames: list[str] = []
    gen = follow(
        store,
        head,
        0,
        renderer=RENDERERS[head.kind],
        poll_ms=1,
        keepalive_s=25,
        sleep=lambda s: None,
        monotonic=lambda: next(ticks),
    )
    for f in gen:
        frames.append(f)
        if f.startswith(":"):
            break
    assert frames[0].startswith("id: 1\n") and frames[-1] == ": keep-alive\n\n"


# ---------------------------------------------------------------------------- limits


def test_max_output_tokens_ends_the_turn_incomplete_and_bills_what_was_produced(env: Env) -> None:
    turn = start(env, "Write a 50-word note")
    _with_limit(env, turn, 7)
    model = HookModel(50)
    assert runner(env, model).handle(turn.id) == "incomplete"
    evs = events(env, turn.id)
    assert sum(e.type == "response.delta" for e in evs) == 7 and model.closed
    assert ledger_kinds(env, turn.id) == ["debit", "usage"]


def _with_limit(env: Env, turn: Turn, limit: int) -> None:
    """Store max_output_tokens with the prompt, as the dialects store request fields."""
    from turnstop.store import codec

    item = codec.input_item(turn.id, {"prompt": "x", "max_output_tokens": limit}, 0)
    env.client.put_item(TableName=env.store.table, Item=codec.dump(item))


class OneChunk:
    def __init__(self, text: str) -> None:
        self.text = text

    def stream(self, prompt: str) -> Iterator[Chunk]:
        yield Chunk(self.text)


def test_output_that_fits_max_output_tokens_exactly_completes(env: Env) -> None:
    turn = start(env)
    _with_limit(env, turn, 7)
    assert runner(env, HookModel(7)).handle(turn.id) == "completed"


def test_the_chunk_that_crosses_max_output_tokens_is_cut_at_the_limit(env: Env) -> None:
    turn = start(env)
    _with_limit(env, turn, 3)
    assert runner(env, OneChunk("one two three four five six seven eight nine ten")).handle(turn.id) == "incomplete"
    evs = events(env, turn.id)
    assert [e.data["delta"] for e in evs if e.type == "response.delta"] == ["one two three "]
    assert evs[-1].data["usage"]["output_tokens"] == 3


def test_the_keeper_keeps_a_quiet_models_lease_alive_so_the_sweeper_leaves_it_alone(env: Env) -> None:
    turn = start(env)
    renewed: list[int] = []
    lease_ms = 300  # renewed every 100 ms of real time while nothing is published

    def quiet_for_two_leases() -> None:
        for _ in range(2):  # each time past the lease's end on the store's clock
            before = env.store.turns.head(turn.id).lease_expires_at  # type: ignore[union-attr]
            env.clock.advance(ms=lease_ms)
            deadline = time.monotonic() + 10
            while env.store.turns.head(turn.id).lease_expires_at == before:  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the keeper did not renew the lease"
                time.sleep(0.005)
            renewed.append(env.store.turns.head(turn.id).lease_expires_at)  # type: ignore[union-attr, arg-type]
        assert _stale(env) == set()

    model = HookModel(5, hooks={2: quiet_for_two_leases})
    cadence = Cadence(flush_ms=60_000, check_ms=10, lease_ms=lease_ms)
    assert runner(env, model, cadence=cadence).handle(turn.id) == "completed"
    assert len(renewed) == 2 and renewed[1] > renewed[0]


def test_a_turn_near_the_hosts_deadline_ends_failed_with_its_terminal_event(env: Env) -> None:
    turn = start(env, "Write a 50-word note")
    late = {"now": False}

    def run_late() -> None:  # six words out, then the model hangs and the host's time runs out
        late["now"] = True
        until_ended(env, turn.id)

    hooked = HookModel(50, hooks={6: run_late})
    assert runner(env, hooked).handle(turn.id, remaining_ms=lambda: 9_000 if late["now"] else 60_000) == "failed"
    evs = events(env, turn.id)
    assert sum(e.type == "response.delta" for e in evs) == 6
    assert evs[-1].type == "response.failed" and evs[-1].data["error"]["code"] == "max_duration"
    assert ledger_kinds(env, turn.id) == ["usage"]


# ---------------------------------------------------------------------------- sweeping


def _stale(env: Env, queued_for_s: float = 300) -> set[str]:
    from turnstop.store.heads import INFLIGHT_SHARDS

    return {t for shard in range(INFLIGHT_SHARDS) for t in env.store.sweep.stale_turns(shard, int(queued_for_s * 1000))}


def test_the_sweeper_finds_turns_nothing_is_moving_and_only_those(env: Env) -> None:
    waiting = start(env)  # its message was lost
    running = start(env)
    env.store.turns.claim(running.id, "worker-a", LEASE_MS)  # its worker is alive, then dies
    done = start(env)
    runner(env, ScriptedModel(0)).handle(done.id)
    assert _stale(env) == set()
    env.clock.advance(seconds=31)
    assert _stale(env) == {running.id}
    env.clock.advance(seconds=300)
    assert _stale(env) == {waiting.id, running.id}


def test_a_swept_turn_is_settled_by_the_worker_and_leaves_the_in_flight_index(env: Env) -> None:
    lost = start(env)
    cancelled_while_queued = start(env)
    cancel(env, cancelled_while_queued.id)
    env.clock.advance(seconds=301)
    assert _stale(env) == {lost.id, cancelled_while_queued.id}
    for turn_id in sorted(_stale(env)):
        runner(env, ScriptedModel(0)).handle(turn_id)
    assert _stale(env, queued_for_s=0) == set()
    assert env.store.turns.get(lost.id).status is Status.COMPLETED  # type: ignore[union-attr]
    assert env.store.turns.get(cancelled_while_queued.id).status is Status.CANCELLED  # type: ignore[union-attr]
    assert events(env, cancelled_while_queued.id)[-1].type == "response.cancelled"


def test_a_turn_is_re_sent_at_most_once_per_interval_and_never_once_finished(env: Env) -> None:
    waiting = start(env)
    assert env.store.sweep.mark_swept(waiting.id, again_after_ms=1_200_000)
    assert not env.store.sweep.mark_swept(waiting.id, again_after_ms=1_200_000)
    env.clock.advance(seconds=1200)
    assert env.store.sweep.mark_swept(waiting.id, again_after_ms=1_200_000)
    runner(env, ScriptedModel(0)).handle(waiting.id)
    env.clock.advance(seconds=1200)
    assert not env.store.sweep.mark_swept(waiting.id, again_after_ms=1_200_000)  # finished: out of the index


def test_a_reader_polls_fast_while_the_turn_moves_and_backs_off_while_it_is_quiet(env: Env) -> None:
    turn = start(env)
    head = env.store.turns.get(turn.id)
    assert head is not None
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 7:  # the turn moves after six quiet polls, then is cancelled
            claimed = env.store.turns.claim(turn.id, "worker-a", LEASE_MS)
            publish(env, claimed, "worker-a", "x")
        if len(waits) == 9:
            cancel(env, turn.id)  # worker A is gone: its redelivered message ends the turn
            env.clock.advance(seconds=31)
            runner(env, HookModel(0), owner="worker-b").handle(turn.id)

    frames = list(
        follow(
            env.store,
            head,
            renderer=RENDERERS[head.kind],
            after=0,
            poll_ms=50,
            keepalive_s=600,
            sleep=sleep,
            max_poll_ms=1000,
        )
    )
    assert frames[-1].split("\n")[1] == "event: response.cancelled"
    # 50 ms at first, doubling on each quiet poll up to 1 s, back to 50 ms once events arrive
    assert waits[:7] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert waits[7] == 0.05


def test_the_after_finish_hook_hears_of_each_finish_once_and_cannot_undo_it(env: Env) -> None:
    heard: list[tuple[str, Status]] = []

    def hook(turn: Turn, end: Any) -> None:
        heard.append((turn.id, end.status))
        raise RuntimeError("the hook failed")

    turn = start(env)
    hooked = TurnRunner(env.store, lambda t: ScriptedModel(0), renderers=RENDERERS, lease_ms=LEASE_MS, on_finished=hook)
    assert hooked.handle(turn.id) == "completed"
    assert hooked.handle(turn.id) == "already_final"
    assert heard == [(turn.id, Status.COMPLETED)]
    assert env.store.turns.get(turn.id).status is Status.COMPLETED  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- output near the store's limits


def test_a_model_chunk_bigger_than_an_item_can_hold_is_stored_in_pieces_and_the_turn_completes(env: Env) -> None:
    turn = start(env)
    rng = random.Random(7)  # one chunk over DynamoDB's 400 KB item limit, and not very compressible
    huge = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(600_000)) + " "
    assert runner(env, OneChunk(huge)).handle(turn.id) == "completed"
    evs = events(env, turn.id)
    deltas = [e.data["delta"] for e in evs if e.type == "response.delta"]
    assert len(deltas) > 1 and "".join(deltas) == huge  # cut into pieces, nothing lost
    assert evs[-1].type == "response.completed"


# ---------------------------------------------------------------- on DynamoDB Local only


@only_on_dynamodb_local
def test_concurrent_cancels_and_completion_end_in_exactly_one_terminal_state(env: Env) -> None:
    for _ in range(5):
        turn = start(env, "Write a 30-word note")
        answers: list[CancelOutcome] = []
        go = threading.Event()

        def canceller(go: threading.Event = go, answers: list[CancelOutcome] = answers, turn_id: str = turn.id) -> None:
            go.wait()
            answers.append(cancel(env, turn_id))

        threads = [threading.Thread(target=canceller) for _ in range(4)]
        for t in threads:
            t.start()
        model = HookModel(30, hooks={28: go.set})
        result = runner(env, model).handle(turn.id)
        for t in threads:
            t.join()
        head = env.store.turns.get(turn.id)
        assert head is not None and head.terminal
        evs = events(env, turn.id)
        terminals = [e for e in evs if e.type in ("response.completed", "response.cancelled", "response.failed")]
        assert len(terminals) == 1 and terminals[0].seq == evs[-1].seq
        won_by_cancel = any(a in (CancelOutcome.CANCELLING, CancelOutcome.CANCELLED) for a in answers)
        assert (head.status is Status.CANCELLED) == won_by_cancel
        assert result == head.status.value
        assert sum(a in (CancelOutcome.CANCELLING, CancelOutcome.CANCELLED) for a in answers) <= 1
        expected_ledger = [] if won_by_cancel else ["debit", "usage"]
        assert ledger_kinds(env, turn.id) == expected_ledger


@only_on_dynamodb_local
def test_a_committed_step_writes_its_items_and_no_index_copy(env: Env) -> None:
    """DynamoDB Local bills index writes by AWS's rules: only a turn's start, claim and
    finish touch the in-flight index, only its start and finish (or a cancel) the live
    index (bulk cancels); a publish writes the table and nothing else."""
    meter = CapacityMeter(env.client)
    try:
        turn = start(env)
        started = meter.index_writes()
        meter.reset()
        claimed = env.store.turns.claim(turn.id, "worker-a", 30_000)
        claim_units = meter.index_writes()
        meter.reset()
        for i in range(5):
            claimed = publish(env, claimed, "worker-a", f"w{i} ")
        commits = list(meter.calls)
        meter.reset()
        env.clock.advance(seconds=31)  # the worker is gone: a redelivered message finishes the turn
        assert runner(env, HookModel(0), owner="worker-b").handle(turn.id) == "failed"
        finished = meter.index_writes()
    finally:
        meter.close()
    assert set(started) == {"gsi2", "gsi4"} and set(claim_units) == {"gsi2"} and set(finished) == {"gsi2", "gsi4"}
    assert [op for op, _ in commits] == ["PutItem", "UpdateItem"] * 5  # a chunk and the head, no transaction
    assert all(set(units) == {"table"} for _, units in commits), commits
    assert all(units["table"] == 1.0 for _, units in commits), commits  # each a one-unit write
