"""A Strands agent behind the local runtime (`make run`), driven through the dialects' real
clients: the sessions API (SSE over HTTP) and the llm dialect (the OpenAI SDK). Its text and
tool calls stream to the reader (a pydantic-ai and an OpenAI Agents SDK agent's too, through the llm dialect); a cancel while its five-minute tool runs ends the turn
cancelled at once, with the dialect's own terminal event and nothing of the agent's after it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
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
        "openai-agent": {
            "provider": "external",
            "queue": "openai-agents",
            "handler": "examples.openai_agents_agent:handle",
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


@pytest.mark.parametrize("model", ["pydantic-agent", "openai-agent"])
def test_an_asyncio_agent_answers_and_is_cancelled_through_the_llm_dialect(api: LocalApi, model: str) -> None:
    with openai.OpenAI(api_key=api.key, base_url=f"{api.url}/api/v1/llm", max_retries=0) as oa:
        done = oa.responses.create(model=model, input="quick question")
        assert done.status == "completed"
        assert done.output_text == "Let me look that up. Found it: the answer to 'quick question' is 42"
        r = oa.responses.create(model=model, input="slow question", stream=True, background=True)
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


# ----------------------------------------------------------------- a tool that needs a person's approval

EMAIL = "Send an email to Dana about the Q3 report"


@contextmanager
def browser(api: LocalApi, user: str) -> Iterator[httpx.Client]:
    """A signed-in browser of ``user`` (the dev provider's sign-in), for the chat dialect."""
    with httpx.Client(base_url=api.url, follow_redirects=True, timeout=60) as client:
        assert client.get("/auth/login", params={"login_hint": user}).json()["user"] == user
        yield client


def test_an_agents_tool_that_needs_approval_becomes_the_chats_confirmation_and_confirm_runs_it(api: LocalApi) -> None:
    with browser(api, "ann") as chat:
        asked = chat.post("/chat", json={"message": EMAIL})
        assert asked.status_code == 200, asked.text
        body = asked.json()
        assert body["requires_confirmation"] is True
        assert body["confirmation_message"] == "Should I send an email to Dana about the Q3 report?"
        assert "once you confirm" in body["response"]  # the agent's own words, after its tool asked
        thread = body["thread_id"]
        actions = chat.get(f"/chat/threads/{thread}").json()["actions"]
        assert [(a["type"], a["status"]) for a in actions] == [("send_email", "pending")]
        assert chat.post("/chat", json={"message": "hi", "thread_id": thread}).json()["error"] == "action_pending"
        done = chat.post("/chat/confirm", json={"thread_id": thread})
        assert done.status_code == 200, done.text
        assert done.json() == {
            "thread_id": thread,
            "status": "confirmed",
            "confirmed": True,
            "response": "Sent an email to Dana about the Q3 report.",
        }
        seen = chat.get(f"/chat/threads/{thread}").json()
        assert [a["status"] for a in seen["actions"]] == ["executed"]
        assert seen["messages"][-1] == {
            **seen["messages"][-1],
            "role": "assistant",
            "content": "Sent an email to Dana about the Q3 report.",
        }
        again = chat.post("/chat/confirm", json={"thread_id": thread})
        assert again.status_code == 409 and again.json()["error"] == "nothing_to_confirm"


def test_a_cancel_drops_the_action_the_agent_asked_for_and_it_never_runs(api: LocalApi) -> None:
    with browser(api, "ben") as chat:
        thread = chat.post("/chat", json={"message": EMAIL}).json()["thread_id"]
        cancelled = chat.post("/chat/cancel", json={"thread_id": thread})
        assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True, cancelled.text
        confirm = chat.post("/chat/confirm", json={"thread_id": thread})
        assert (
            confirm.status_code == 409 and confirm.json()["message"] == "Nothing to confirm: the action was cancelled"
        )
        seen = chat.get(f"/chat/threads/{thread}").json()
        assert [a["status"] for a in seen["actions"]] == ["cancelled"]
        assert "Sent an email" not in json.dumps(seen["messages"])  # the agent was never resumed
        # the thread goes on: the next message is the agent's again
        nxt = chat.post("/chat", json={"message": "quick question", "thread_id": thread})
        assert nxt.status_code == 200 and nxt.json()["requires_confirmation"] is False, nxt.text


def test_an_agents_reply_that_asks_nothing_leaves_nothing_to_confirm_and_its_cancel_still_stops_it(
    api: LocalApi,
) -> None:
    with browser(api, "cy") as chat:
        plain = chat.post("/chat", json={"message": "quick question"}).json()
        assert plain["requires_confirmation"] is False and plain["response"].endswith("is 42")
        thread = plain["thread_id"]
        nothing = chat.post("/chat/confirm", json={"thread_id": thread})
        assert nothing.status_code == 409 and nothing.json()["error"] == "nothing_to_confirm"
        with chat.stream("POST", "/chat/stream", json={"message": "slow question", "thread_id": thread}) as r:
            names: list[str] = []
            for ev in sse_events(r.iter_lines()):
                names.append(ev["event"])
                if ev["event"] == "token" and "[tool] slow_lookup" in ev["data"]["data"]["text"]:
                    stop = chat.post("/chat/cancel", json={"thread_id": thread})
                    assert stop.status_code == 200, stop.text  # the reply alone: no action was asked
        assert names[-1] == "cancelled"
