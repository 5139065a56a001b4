"""The Strands Agents integration (examples/strands_agent.py, turnstop.worker.strands) behind the
runner: the agent's text and tool calls stream into the turn and its usage is the turn's; a
cancel while its tool runs reaches the tool through Strands' own ``cancel_signal`` and the turn
ends cancelled with nothing after it. Needs ``make install-agents`` (``make test-agents``)."""

from __future__ import annotations

import threading

from examples import strands_agent
from tests.cases.fixtures import Env
from tests.cases.turns import cancel, events, ledger_kinds, start, streamed
from tests.cases.turns import runner as runner_of
from turnstop.core.turn import Usage
from turnstop.providers.config import parse
from turnstop.providers.models import Models
from turnstop.runtime.runner import TurnRunner

ROUTES = {
    "routes": {"agent": {"provider": "external", "queue": "strands-test", "handler": "examples.strands_agent:handle"}}
}


def runner(env: Env) -> TurnRunner:
    models = Models(parse(ROUTES), scripted_step_ms=0)
    return runner_of(env, models.provider(models.routes.default_route), owner="w", upstream=models.upstream)


def test_a_strands_agent_streams_its_steps_and_its_usage_is_the_turns(env: Env) -> None:
    turn = start(env, "quick question")
    assert runner(env).handle(turn.id) == "completed"
    assert streamed(env, turn.id) == (
        'Let me look that up. [tool] slow_lookup {"query": "quick question"}\n'
        "Found it: the answer to 'quick question' is 42"
    )
    head = env.store.turns.get(turn.id)
    assert head is not None and head.usage == Usage(20, 16)  # both model calls of the loop
    assert ledger_kinds(env, turn.id) == ["debit", "usage"]


def test_a_cancel_while_the_agents_tool_runs_stops_the_tool_and_ends_the_turn_cancelled(env: Env) -> None:
    strands_agent.TOOL_RUNNING.clear()
    strands_agent.TOOL_SAW_CANCEL.clear()
    strands_agent.TOOL_STOPPED.clear()
    turn = start(env, "slow question")
    done: list[str] = []
    thread = threading.Thread(target=lambda: done.append(runner(env).handle(turn.id)))
    thread.start()
    assert strands_agent.TOOL_RUNNING.wait(30)  # inside the five-minute tool
    cancel(env, turn.id)
    thread.join(30)
    assert done == ["cancelled"]
    assert strands_agent.TOOL_STOPPED.wait(30)
    assert strands_agent.TOOL_SAW_CANCEL == ["slow question"]  # the tool saw Strands' cancel_signal
    assert events(env, turn.id)[-1].type == "response.cancelled"
    assert "Found" not in streamed(env, turn.id)  # nothing of the agent's after the cancel
    assert ledger_kinds(env, turn.id) == []
