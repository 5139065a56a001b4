"""A running turn when DynamoDB fails under its keeper: at a publish (the chunk or the head
update), at the finish, and at a cancelled finish. Each fault fails a call the way DynamoDB
does (throttling, a transaction in flight, a timeout before the write, a timeout after it:
the write landed, its answer was lost). Whatever fails, the turn ends once, in the right
state, with every word exactly once in order and the ledger written once (or not at all)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.cases.fixtures import Env
from tests.cases.turns import (
    HookModel,
    cancel,
    cancel_then_go_quiet,
    events,
    eventually,
    ledger_kinds,
    runner,
    start,
)
from tests.faults import (
    FAULTS,
    Fault,
    FaultyClient,
    publishes,
    puts_chunk,
    timeout,
    updates,
)
from turnstop.core.turn import Status, Turn, TurnEnd

WORDS = 30


@pytest.fixture
def faulty(env: Env) -> FaultyClient:
    client = FaultyClient(env.store.db.ddb)
    env.store.db._ddb = client
    return client


class Heard:
    """The after-finish hook: how often each turn was reported finished, and how."""

    def __init__(self) -> None:
        self.ends: list[tuple[str, Status]] = []

    def __call__(self, turn: Turn, end: TurnEnd) -> None:
        self.ends.append((turn.id, end.status))


def run(env: Env, model: Any, turn_id: str, heard: Heard | None = None) -> str:
    return runner(env, model, on_finished=heard).handle(turn_id)


def published(env: Env, turn_id: str, seq: int) -> Callable[[], object]:
    """A hook that waits (bounded) until the head covers ``seq``: the model goes on only once a
    publish landed, so each test's faults meet a publish mid-turn, not just the finish."""
    return lambda: eventually(lambda: (h := env.store.turns.head(turn_id)) is not None and h.seq >= seq, "a publish")


def assert_whole(env: Env, turn_id: str, status: Status, words: int = WORDS) -> None:
    head = env.store.turns.get(turn_id)
    assert head is not None and head.status is status
    evs = events(env, turn_id)
    assert [e.seq for e in evs] == list(range(1, head.seq + 1))  # every event once, in order
    deltas = [e.data["delta"] for e in evs if e.type == "response.delta"]
    assert deltas == [f"w{i} " for i in range(words)]
    terminal = [e for e in evs if e.type in ("response.completed", "response.cancelled", "response.failed")]
    assert len(terminal) == 1 and terminal[0].seq == head.seq


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("at", ["chunk", "head"])
def test_a_publish_that_meets_a_fault_is_retried_and_the_turn_completes_whole(
    env: Env, faulty: FaultyClient, at: str, fault: str
) -> None:
    error, landed = FAULTS[fault]
    turn = start(env, f"Write a {WORDS}-word note")
    match = puts_chunk if at == "chunk" else updates("seq")
    faulty.inject(Fault("put_item" if at == "chunk" else "update_item", error, after=landed, times=2, match=match))
    heard = Heard()
    model = HookModel(WORDS, hooks={10: published(env, turn.id, 11), 20: published(env, turn.id, 21)})
    assert run(env, model, turn.id, heard) == "completed"
    assert faulty.fired == 2
    assert_whole(env, turn.id, Status.COMPLETED)
    assert ledger_kinds(env, turn.id) == ["debit", "usage"]
    assert heard.ends == [(turn.id, Status.COMPLETED)]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_finish_that_meets_a_fault_is_retried_as_it_was_and_lands_once(
    env: Env, faulty: FaultyClient, fault: str
) -> None:
    error, landed = FAULTS[fault]
    turn = start(env, f"Write a {WORDS}-word note")
    # a transaction in flight is retried inside the commit too: fail it past those retries
    faulty.inject(Fault("transact_write_items", error, after=landed, times=1 if landed else 4))
    heard = Heard()
    assert run(env, HookModel(WORDS), turn.id, heard) == "completed"
    assert faulty.fired == (1 if landed else 4)
    assert_whole(env, turn.id, Status.COMPLETED)
    assert ledger_kinds(env, turn.id) == ["debit", "usage"]  # once, though the finish was sent again
    assert heard.ends == [(turn.id, Status.COMPLETED)]  # reported once, as this worker's own finish


@pytest.mark.parametrize("fault", FAULTS)
def test_a_cancelled_finish_that_meets_a_fault_still_ends_cancelled_and_bills_nothing(
    env: Env, faulty: FaultyClient, fault: str
) -> None:
    error, landed = FAULTS[fault]
    turn = start(env, f"Write a {WORDS}-word note")
    faulty.inject(Fault("transact_write_items", error, after=landed, times=1 if landed else 4))
    heard = Heard()
    model = HookModel(WORDS, hooks={12: cancel_then_go_quiet(env, turn.id)})
    assert run(env, model, turn.id, heard) == "cancelled"
    assert_whole(env, turn.id, Status.CANCELLED, words=12)
    assert ledger_kinds(env, turn.id) == []
    assert heard.ends == [(turn.id, Status.CANCELLED)]


def test_a_publish_that_landed_unanswered_and_a_cancel_right_after_end_cancelled_with_every_word(
    env: Env, faulty: FaultyClient
) -> None:
    """The head update of a publish lands, its answer is lost, and a cancel lands before the
    keeper tries again: the retry is refused by the cancel, the keeper learns from the refusal
    that its own publish landed, and ends the turn cancelled after exactly those events."""
    turn = start(env, f"Write a {WORDS}-word note")

    def lost_answer_then_cancel(op: str) -> Exception:
        cancel(env, turn.id)
        return timeout(op)

    # the publish that covers the first 10 words (the model waits for it at word 10)
    faulty.inject(Fault("update_item", lost_answer_then_cancel, after=True, match=publishes(11)))
    seen_cancel = lambda: eventually(  # noqa: E731
        lambda: (h := env.store.turns.head(turn.id)) is not None and h.terminal, "the cancelled end"
    )
    model = HookModel(WORDS, hooks={10: published(env, turn.id, 11), 11: seen_cancel})
    assert run(env, model, turn.id) == "cancelled"
    assert faulty.fired == 1
    assert_whole(env, turn.id, Status.CANCELLED, words=11)
    assert ledger_kinds(env, turn.id) == []
