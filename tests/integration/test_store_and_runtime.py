"""Store and runtime cases on DynamoDB Local, plus races that need real conditional-write
atomicity under concurrency (moto does not serialize concurrent writers)."""

import threading

from tests.cases.fixtures import Env
from tests.cases.store_cases import *  # noqa: F401,F403
from tests.cases.store_cases import HookModel, cancel, events, ledger_kinds, publish, runner, start
from tests.conftest import CapacityMeter
from turnstop.core.turn import CancelOutcome, Status


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
