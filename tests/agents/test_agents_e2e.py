"""A Strands agent behind the local runtime (`make run`), driven through the dialects' real
clients: the sessions API (SSE over HTTP) and the llm dialect (the OpenAI SDK). Its text and
tool calls stream to the reader (a pydantic-ai agent's too, through the llm dialect); a cancel while its five-minute tool runs ends the turn
cancelled at once, with the dialect's own terminal event and nothing of the agent's after it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import LocalApi, all_store_kinds, serve, sse_events

ROUTES = {
    "default": "agent",
    "routes": {
        "agent": {"provider": "external", "queue": "strands", "handler": "examples.strands_agent:handle"},
        "pydantic-agent": {
            "provider": "external",
            "queue": "pydantic-ai",
            "handler": "examples.pydantic_ai_agent:handle",
        },
        "stubborn": {"provider": "external", "queue": "stubborn", "handler": "tests.agents.stubborn:handle"},
    },
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    env = {"TURNSTOP_MODELS": json.dumps(ROUTES), "TURNSTOP_CANCEL_CHECK_MS": "100"}
    with serve(tmp_path_factory.mktemp("state-agents"), all_store_kinds()[0], extra_env=env) as local:
        yield local


def auth(api: LocalApi) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.key}"}


def session_turn(api: LocalApi, message: str, cancel_on: str | None = None) -> list[dict[str, Any]]:
    """Stream a session turn; once a delta contains ``cancel_on``, cancel it and read on to the end."""
    session = httpx.post(f"{api.url}/v1/sessions", headers=auth(api), json={"persistent": True}).json()["id"]
    seen: list[dict[str, Any]] = []
    with httpx.stream(
        "POST", f"{api.url}/v1/sessions/{session}/messages", headers=auth(api), json={"message": message}, timeout=120
    ) as r:
        assert r.status_code == 200
        rid = r.headers["X-Response-Id"]
        for ev in sse_events(r.iter_lines()):
            seen.append(ev)
            if cancel_on and ev["event"] == "message.delta" and cancel_on in ev["data"]["delta"]:
                c = httpx.post(f"{api.url}/v1/sessions/{session}/responses/{rid}/cancel", headers=auth(api))
                assert c.status_code == 202, c.text
                cancel_on = None
    return seen


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"]["delta"] for e in events if e["event"] == "message.delta")


def test_a_session_streams_the_agents_steps_and_answer(api: LocalApi) -> None:
    events = session_turn(api, "quick question")
    assert events[-1]["event"] == "message.completed"
    assert text_of(events) == (
        'Let me look that up. [tool] slow_lookup {"query": "quick question"}\n'
        "Found it: the answer to 'quick question' is 42"
    )


def test_a_session_cancel_while_the_agents_tool_runs_ends_the_turn_cancelled(api: LocalApi) -> None:
    events = session_turn(api, "slow question", cancel_on="[tool] slow_lookup")
    assert events[-1]["event"] == "message.cancelled"
    assert "Found" not in text_of(events)  # the agent never answered: its tool was stopped


def test_the_llm_dialect_runs_the_agent_and_its_cancel_stops_it(api: LocalApi) -> None:
    with openai.OpenAI(api_key=api.key, base_url=f"{api.url}/api/v1/llm", max_retries=0) as oa:
        done = oa.responses.create(model="agent", input="quick question")
        assert (
            done.status == "completed"
            and done.output_text == "Let me look that up. Found it: the answer to 'quick question' is 42"
        )
        types: list[str] = []
        rid = text = ""
        for ev in oa.responses.create(model="agent", input="slow question", stream=True, background=True):
            types.append(ev.type)
            if ev.type == "response.created":
                rid = ev.response.id
            elif ev.type == "response.output_text.delta":
                text += ev.delta
                if len(text) == len(ev.delta):  # the agent's first words: cancel it
                    assert oa.responses.cancel(rid).status == "cancelled"
        assert types[-1] == "response.cancelled"
        assert "Found" not in text  # the agent never answered


def test_a_pydantic_ai_agent_answers_and_is_cancelled_through_the_llm_dialect(api: LocalApi) -> None:
    with openai.OpenAI(api_key=api.key, base_url=f"{api.url}/api/v1/llm", max_retries=0) as oa:
        done = oa.responses.create(model="pydantic-agent", input="quick question")
        assert done.status == "completed"
        assert done.output_text == "Let me look that up. Found it: the answer to 'quick question' is 42"
        r = oa.responses.create(model="pydantic-agent", input="slow question", stream=True, background=True)
        types: list[str] = []
        rid = ""
        for ev in r:
            types.append(ev.type)
            if ev.type == "response.created":
                rid = ev.response.id
            elif ev.type == "response.output_text.delta" and types.count(ev.type) == 1:  # its first words
                assert oa.responses.cancel(rid).status == "cancelled"
        assert types[-1] == "response.cancelled"
        assert "response.output_text.delta" in types


def test_a_worker_that_keeps_emitting_after_the_cancel_never_reaches_a_reader(api: LocalApi) -> None:
    with openai.OpenAI(api_key=api.key, base_url=f"{api.url}/api/v1/llm", max_retries=0) as oa:
        types: list[str] = []
        text = rid = ""
        for ev in oa.responses.create(model="stubborn", input="go", stream=True, background=True):
            types.append(ev.type)
            if ev.type == "response.created":
                rid = ev.response.id
            elif ev.type == "response.output_text.delta":
                text += ev.delta
                if ev.delta == "w5 ":  # the worker is inside its slow step
                    assert oa.responses.cancel(rid).status == "cancelled"
        assert types[-1] == "response.cancelled"  # the terminal event is the last thing read
        assert text == "".join(f"w{i} " for i in range(6))  # nothing the worker emitted after the cancel
        replay = [ev.type for ev in oa.responses.retrieve(rid, stream=True)]
        assert replay[-1] == "response.cancelled" and replay.count("response.output_text.delta") == 6
