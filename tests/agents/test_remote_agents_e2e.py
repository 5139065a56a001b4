"""Agents running outside turnstop: the Strands, pydantic-ai and OpenAI Agents SDK examples as remote workers (a
process of their own, talking to the worker API over HTTP) behind the local runtime, driven by
the dialects' real clients: the sessions API (SSE over HTTP) and the llm dialect (the OpenAI
SDK). Each framework streams its steps and answer through both dialects, with the agent's own
usage billed; a cancel stops it mid-tool and mid-model-call, with the dialect's own terminal
event and nothing of the agent's after it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import (
    LAYER_ON_PATH,
    ChildProcess,
    LocalApi,
    all_store_kinds,
    auth,
    serve,
    session_turn,
    text_of,
)

WORKER_KEY = "tw_agents_worker_key_0123456789abcdef"
QUEUE = "agents"
ROUTES = {
    "default": "agent",
    "routes": {
        "agent": {
            "provider": "external",
            "queue": QUEUE,
            "remote": True,
            "idle_timeout_s": 60,
            "worker_key_sha256": hashlib.sha256(WORKER_KEY.encode()).hexdigest(),
            "price_per_million": {"input": 3, "output": 15},
        }
    },
}
HANDLERS = {
    "strands": "examples.strands_agent:handle",
    "pydantic-ai": "examples.pydantic_ai_agent:handle",
    "openai-agents": "examples.openai_agents_agent:handle",
}
ANSWER = "Found it: the answer to '{q}' is 42"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    env = {"TURNSTOP_MODELS": json.dumps(ROUTES), "TURNSTOP_CANCEL_CHECK_MS": "100"}
    with serve(tmp_path_factory.mktemp("state-remote-agents"), all_store_kinds()[0], extra_env=env) as local:
        yield local


class Worker(ChildProcess):
    """``tests.agents.remote_agent`` serving the route's queue with one framework's example."""

    def __init__(self, api: LocalApi, framework: str) -> None:
        env = {**LAYER_ON_PATH, "TURNSTOP_WORKER_KEY": WORKER_KEY}
        super().__init__("tests.agents.remote_agent", api.url, QUEUE, HANDLERS[framework], env=env)
        self.expect("READY")

    def done(self, prompt: str) -> dict[str, Any]:
        """What the handler reported when it returned for ``prompt``."""
        report: dict[str, Any] = json.loads(self.expect(f"DONE {prompt} ")[len(f"DONE {prompt} ") :])
        return report


@pytest.fixture(scope="module", params=sorted(HANDLERS))
def worker(request: pytest.FixtureRequest, api: LocalApi) -> Iterator[Worker]:
    running = Worker(api, request.param)
    yield running
    running.stop()


def cancel_session(api: LocalApi, session: str, rid: str) -> None:
    c = httpx.post(f"{api.url}/v1/sessions/{session}/responses/{rid}/cancel", headers=auth(api))
    assert c.status_code == 202, c.text


def llm_turn(api: LocalApi, prompt: str, cancel_when: Callable[[str], bool]) -> tuple[list[str], str]:
    """A background llm response streamed through the OpenAI SDK, cancelled once
    ``cancel_when(text so far)``; the event types read and the text."""
    types: list[str] = []
    rid = text = ""
    with openai.OpenAI(api_key=api.key, base_url=f"{api.url}/api/v1/llm", max_retries=0) as oa:
        for ev in oa.responses.create(model="agent", input=prompt, stream=True, background=True):
            types.append(ev.type)
            if ev.type == "response.created":
                rid = ev.response.id
            elif ev.type == "response.output_text.delta":
                text += ev.delta
                if cancel_when(text):
                    assert oa.responses.cancel(rid).status == "cancelled"
                    cancel_when = lambda _text: False  # noqa: E731 - once
        assert oa.responses.retrieve(rid).status == "cancelled"
    return types, text


def test_a_session_streams_the_remote_agents_steps_and_answer_with_its_usage(api: LocalApi, worker: Worker) -> None:
    events = session_turn(api, "quick question")
    assert events[-1]["event"] == "message.completed", events[-1]
    text = text_of(events)
    assert text.startswith("Let me look that up. ") and text.endswith(ANSWER.format(q="quick question"))
    assert '[tool] slow_lookup {"query": "quick question"}' in text  # the agent's tool call, as it made it
    report = worker.done("quick question")
    usage = events[-1]["data"]["usage"]  # the agent's own counts, billed as a provider's
    assert [usage["input_tokens"], usage["output_tokens"]] == report["usage"] and report["usage"][1] > 0


def test_the_llm_dialect_runs_the_remote_agent_through_the_openai_sdk(api: LocalApi, worker: Worker) -> None:
    with openai.OpenAI(api_key=api.key, base_url=f"{api.url}/api/v1/llm", max_retries=0) as oa:
        done = oa.responses.create(model="agent", input="quick llm question")
    assert done.status == "completed"
    assert done.output_text == "Let me look that up. " + ANSWER.format(q="quick llm question")
    report = worker.done("quick llm question")
    assert done.usage is not None and [done.usage.input_tokens, done.usage.output_tokens] == report["usage"]


def test_a_session_cancel_mid_tool_stops_the_remote_agents_tool(api: LocalApi, worker: Worker) -> None:
    prompt = "slow question in a session"

    def cancel_in_tool(delta: str, session: str, rid: str) -> bool:
        if "[tool] slow_lookup" not in delta:
            return False
        worker.expect(f"TOOL_RUNNING {prompt}")  # the five-minute tool is running in the worker
        cancel_session(api, session, rid)
        return True

    events = session_turn(api, prompt, cancel_in_tool)
    assert events[-1]["event"] == "message.cancelled", events[-1]
    assert "Found" not in text_of(events)
    report = worker.done(prompt)  # within the expect's bound, not the tool's five minutes
    assert report["cancelled"] and report["tool_stopped"], report


def test_an_llm_cancel_mid_tool_stops_the_remote_agents_tool(api: LocalApi, worker: Worker) -> None:
    prompt = "slow question through the llm dialect"

    def in_tool(text: str) -> bool:
        worker.expect(f"TOOL_RUNNING {prompt}")
        return True

    types, text = llm_turn(api, prompt, in_tool)
    assert types[-1] == "response.cancelled"
    assert "Found" not in text
    report = worker.done(prompt)
    assert report["cancelled"] and report["tool_stopped"], report


def test_a_session_cancel_mid_model_call_stops_the_remote_agent(api: LocalApi, worker: Worker) -> None:
    prompt = "slow model in a session"

    def cancel_at_once(delta: str, session: str, rid: str) -> bool:
        cancel_session(api, session, rid)
        return True

    events = session_turn(api, prompt, cancel_at_once)
    assert events[-1]["event"] == "message.cancelled", events[-1]
    report = worker.done(prompt)  # the model's 2,000 words (100 s) were never all written
    assert report["cancelled"] and report["words"] < 2000, report
    assert text_of(events).split() == [f"w{i}" for i in range(len(text_of(events).split()))]


def test_an_llm_cancel_mid_model_call_stops_the_remote_agent(api: LocalApi, worker: Worker) -> None:
    prompt = "slow model through the llm dialect"
    types, text = llm_turn(api, prompt, lambda text: len(text.split()) >= 3)
    assert types[-1] == "response.cancelled"
    report = worker.done(prompt)
    assert report["cancelled"] and report["words"] < 2000, report
    assert len(text.split()) < 2000


def test_a_remote_agents_tool_that_needs_approval_is_the_chats_confirmation_and_confirm_runs_it(
    api: LocalApi, worker: Worker
) -> None:
    with httpx.Client(base_url=api.url, follow_redirects=True, timeout=60) as chat:
        assert chat.get("/auth/login", params={"login_hint": "dee"}).json()["user"] == "dee"
        asked = chat.post("/chat", json={"message": "Send an email to Dana about the Q3 report"})
        assert asked.status_code == 200, asked.text
        assert asked.json()["requires_confirmation"] is True
        assert asked.json()["confirmation_message"] == "Should I send an email to Dana about the Q3 report?"
        done = chat.post("/chat/confirm", json={"thread_id": asked.json()["thread_id"]})
        assert done.status_code == 200, done.text  # the worker ran the approved action
        assert done.json()["response"] == "Sent an email to Dana about the Q3 report."
