"""The turn's rules, with no AWS at all: derived state, grace, visibility and the cancel outcomes."""

from __future__ import annotations

import pytest

from turnstop.core import scopes
from turnstop.core.turn import (
    CancelOutcome,
    Status,
    Turn,
    final_status_after_lost_worker,
    outcome_from_conflict,
    outcome_from_success,
)

NOW = 1_000_000


def turn(**kw: object) -> Turn:
    base: dict[str, object] = {
        "id": "resp_a",
        "kind": "response",
        "tenant": "t1",
        "scope": scopes.STATELESS,
        "stored_status": Status.RUNNING,
        "created_at": NOW - 5_000,
        "seq": 4,
        "grace_ms": 120_000,
    }
    return Turn(**{**base, **kw})  # type: ignore[arg-type]


def test_a_queued_turn_with_its_flag_set_is_cancelled_before_start_and_ends_at_the_cancel() -> None:
    t = turn(stored_status=Status.QUEUED, cancel_requested_at=NOW)
    assert t.cancelled_before_start and t.status is Status.CANCELLED and t.terminal
    assert t.completed_at == NOW and t.expires_at == NOW + 120_000
    assert t.last_readable_seq == t.seq + 1  # its terminal event is derived, one past seq


def test_a_running_turn_whose_cancel_was_accepted_reads_cancelled_though_it_is_not_terminal_yet() -> None:
    flagged = turn(cancel_requested_at=NOW)
    assert flagged.read_status is Status.CANCELLED and flagged.status is Status.RUNNING and not flagged.terminal
    assert turn().read_status is Status.RUNNING
    assert turn(stored_status=Status.QUEUED).read_status is Status.QUEUED
    assert turn(stored_status=Status.QUEUED, cancel_requested_at=NOW).read_status is Status.CANCELLED
    for ended in (Status.COMPLETED, Status.FAILED, Status.INCOMPLETE, Status.CANCELLED):
        assert turn(stored_status=ended).read_status is ended


def test_a_running_turn_with_its_flag_set_is_still_running_cancelling_is_not_a_state() -> None:
    t = turn(cancel_requested_at=NOW)
    assert not t.cancelled_before_start and t.status is Status.RUNNING and not t.terminal
    assert t.completed_at is None and t.expires_at is None and t.last_readable_seq == t.seq


def test_grace_is_counted_from_the_end_and_expiry_is_exclusive_of_nothing() -> None:
    t = turn(stored_status=Status.COMPLETED, finished_at=NOW)
    assert not t.expired(NOW + 119_999) and t.expired(NOW + 120_000)
    assert turn(stored_status=Status.COMPLETED, finished_at=NOW, stored_expires_at=NOW + 5).expired(NOW + 5)


def test_visibility_checks_tenant_scope_and_end_user_only_when_named() -> None:
    t = turn(end_user="alice")
    assert t.visible_to("t1") and t.visible_to("t1", scopes.STATELESS, "alice")
    assert not t.visible_to("t2")
    assert not t.visible_to("t1", scopes.session("sess_x"))
    assert not t.visible_to("t1", end_user="bob")


@pytest.mark.parametrize(
    ("old", "tenant", "expected"),
    [
        (None, "t1", CancelOutcome.NOT_FOUND),
        (turn(), "intruder", CancelOutcome.NOT_FOUND),
        (turn(stored_status=Status.COMPLETED, finished_at=NOW - 200_000), "t1", CancelOutcome.NOT_FOUND),
        (turn(stored_status=Status.COMPLETED, finished_at=NOW), "t1", CancelOutcome.ALREADY_TERMINAL),
        (turn(stored_status=Status.QUEUED, cancel_requested_at=NOW - 1), "t1", CancelOutcome.ALREADY_TERMINAL),
        (turn(cancel_requested_at=NOW - 1), "t1", CancelOutcome.ALREADY_CANCELLING),
    ],
)
def test_a_failed_cancel_condition_is_explained_by_the_old_item(
    old: Turn | None, tenant: str, expected: CancelOutcome
) -> None:
    assert outcome_from_conflict(old, NOW, tenant) is expected


def test_an_old_item_that_meets_the_cancel_condition_cannot_have_failed_it() -> None:
    with pytest.raises(AssertionError):
        outcome_from_conflict(turn(), NOW, "t1")


def test_success_outcomes_and_which_outcomes_end_cancelled() -> None:
    assert outcome_from_success(Status.QUEUED) is CancelOutcome.CANCELLED
    assert outcome_from_success(Status.RUNNING) is CancelOutcome.CANCELLING
    assert {o for o in CancelOutcome if o.ends_cancelled} == {
        CancelOutcome.CANCELLED,
        CancelOutcome.CANCELLING,
        CancelOutcome.ALREADY_CANCELLING,
    }


def test_a_lost_worker_ends_cancelled_only_if_a_cancel_was_asked_for() -> None:
    assert final_status_after_lost_worker(turn(cancel_requested_at=NOW)) is Status.CANCELLED
    assert final_status_after_lost_worker(turn()) is Status.FAILED
