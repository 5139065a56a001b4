"""Chat on DynamoDB Local: the shared cases, plus what needs real conditional-write atomicity
under concurrency: confirm and cancel released together on one action, many times over."""

from __future__ import annotations

from tests.cases.chat_cases import *  # noqa: F403
from tests.cases.chat_cases import ChatApi, races
from tests.cases.chat_signin_cases import *  # noqa: F403
from tests.cases.fixtures import Env


def test_confirm_and_cancel_racing_many_times_exactly_one_wins_each_time_and_both_win_sometimes(env: Env) -> None:
    """Each round: a pending action, a confirm thread and a cancel thread released by one
    barrier (which one starts first alternates). Every round exactly one gets 200 and the other
    409, and the action executed iff the confirm won (race_once checks); over the rounds both
    confirm and cancel win."""
    assert races(ChatApi(env), 30) == {"confirm", "cancel"}
