"""The asyncio frameworks' integrations behind the runner: pydantic-ai (examples/pydantic_ai_agent.py,
turnstop.worker.pydantic_ai) and the OpenAI Agents SDK (examples/openai_agents_agent.py,
turnstop.worker.openai_agents). The run's text and tool calls stream into the turn and its usage
is the turn's; a cancel while its tool awaits cancels the run's tasks (the tool sees
``CancelledError``) and the turn ends cancelled with nothing after it."""

from __future__ import annotations

import threading
from types import ModuleType

import pytest

from examples import openai_agents_agent, pydantic_ai_agent
from tests.cases.fixtures import Env
from tests.cases.turns import cancel, events, ledger_kinds, start, streamed
from tests.cases.turns import runner as runner_of
from turnstop.providers.config import parse
from turnstop.providers.models import Models
from turnstop.runtime.runner import TurnRunner

EXAMPLES = [pydantic_ai_agent, openai_agents_agent]


@pytest.fixture(params=EXAMPLES, ids=lambda example: example.__name__.rpartition(".")[2])
def example(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    return module


def runner(env: Env, example: ModuleType) -> TurnRunner:
    name = example.__name__.rpartition(".")[2]
    route = {"provider": "external", "queue": f"{name}-test", "handler": f"{example.__name__}:handle"}
    models = Models(parse({"routes": {"agent": route}}), scripted_step_ms=0)
    return runner_of(env, models.provider(models.routes.default_route), owner="w", upstream=models.upstream)


def test_an_agent_streams_its_steps_and_its_usage_is_the_turns(env: Env, example: ModuleType) -> None:
    turn = start(env, "quick question")
    assert runner(env, example).handle(turn.id) == "completed"
    assert streamed(env, turn.id) == (
        'Let me look that up. [tool] slow_lookup {"query": "quick question"}\n'
        "Found it: the answer to 'quick question' is 42"
    )
    head = env.store.turns.get(turn.id)
    assert head is not None and head.upstream is not None and head.upstream["estimated"] is False
    assert head.usage.output_tokens > 0 and head.usage.input_tokens > 0  # the run's own count
    assert ledger_kinds(env, turn.id) == ["debit", "usage"]


def test_a_cancel_while_the_agents_tool_awaits_cancels_the_run_and_ends_the_turn_cancelled(
    env: Env, example: ModuleType
) -> None:
    example.TOOL_RUNNING.clear()
    example.TOOL_STOPPED.clear()
    turn = start(env, "slow question")
    done: list[str] = []
    thread = threading.Thread(target=lambda: done.append(runner(env, example).handle(turn.id)))
    thread.start()
    assert example.TOOL_RUNNING.wait(30)  # inside the five-minute tool
    cancel(env, turn.id)
    thread.join(30)
    assert done == ["cancelled"]
    assert example.TOOL_STOPPED.wait(30)  # the tool's await was cancelled with the run
    assert events(env, turn.id)[-1].type == "response.cancelled"
    assert "Found" not in streamed(env, turn.id)
    assert ledger_kinds(env, turn.id) == []
