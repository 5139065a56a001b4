"""Real model providers behind the dialects, end to end: the local runtime with
``TURNSTOP_MODELS`` routing to protocol-exact fake upstreams (OpenAI-compatible Chat
Completions, Bedrock ConverseStream, the OpenAI Responses API), driven through the dialects'
real clients. The upstream records what it was sent and when its client went away, so these
tests prove the model was asked the whole request and that a cancel closed the upstream call
itself, in every phase."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import ResponseCompletedEvent

from tests.e2e.conftest import LocalApi, all_store_kinds, serve, sse_events, wait_for
from turnstop_local.fake_upstream import Behaviour, Fail, FakeUpstream, expected_text

LONG = Behaviour(output_tokens=20_000, tokens_per_second=400)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        fake.add_model("long", LONG)
        fake.add_model("short", Behaviour(output_tokens=12, cached_tokens=3, thinking_tokens=4))
        fake.add_model("prefill", Behaviour(prefill_s=60, output_tokens=10))
        fake.add_model("thinking-first", Behaviour(first_token_delay_s=60, output_tokens=10))
        fake.add_model("down", Behaviour(fail=Fail(503, "upstream down")))
        fake.add_model("bedrock-short", Behaviour(output_tokens=9))
        fake.add_model("bedrock-long", LONG)
        fake.add_model("responses-long", LONG)
        fake.add_model("responses-short", Behaviour(output_tokens=7))
        yield fake


def routes(fake: FakeUpstream) -> dict[str, Any]:
    chat = {"provider": "openai-chat", "base_url": fake.openai_base_url, "api_key_env": "TS_E2E_UPSTREAM_KEY"}
    bedrock = {"provider": "bedrock-converse", "endpoint_url": fake.base_url, "region": "us-east-1"}
    responses = {"provider": "openai-responses", "base_url": fake.openai_base_url, "api_key_env": "TS_E2E_UPSTREAM_KEY"}
    fast = {"retry_budget_s": 0.5, "first_byte_timeout_s": 120}
    return {
        "default": "long",
        "routes": {
            "long": {**chat, "model": "long"},
            "short": {**chat, "model": "short", "price_per_million": {"input": 2, "output": 8}},
            "prefill": {**chat, "model": "prefill"},
            "thinking-first": {**chat, "model": "thinking-first"},
            "down": {**chat, "model": "down", **fast},
            "bedrock-short": {**bedrock, "model": "bedrock-short"},
            "bedrock-long": {**bedrock, "model": "bedrock-long"},
            "responses-long": {**responses, "model": "responses-long"},
            "responses-short": {**responses, "model": "responses-short"},
        },
    }


@pytest.fixture(scope="module")
def api(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    models = tmp_path_factory.mktemp("models") / "models.json"
    models.write_text(json.dumps(routes(upstream)))
    env = {
        "TURNSTOP_MODELS": str(models),
        "TS_E2E_UPSTREAM_KEY": "sk-e2e-upstream-secret",
        "TURNSTOP_CANCEL_CHECK_MS": "100",
    }
    with serve(tmp_path_factory.mktemp("state-models"), all_store_kinds()[0], extra_env=env) as local:
        yield local


@pytest.fixture
def oa(api: LocalApi) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=api.key, base_url=f"{api.url}/api/v1/llm", max_retries=0) as client:
        yield client


def auth(api: LocalApi) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.key}"}


def stream_session_turn(api: LocalApi, session_id: str, message: str, stop_after_deltas: int | None) -> list[Any]:
    """Stream a session turn; after ``stop_after_deltas`` deltas, cancel it and read on to the end."""
    seen: list[Any] = []
    with httpx.stream(
        "POST",
        f"{api.url}/v1/sessions/{session_id}/messages",
        headers=auth(api),
        json={"message": message},
        timeout=120,
    ) as r:
        assert r.status_code == 200
        rid = r.headers["X-Response-Id"]
        deltas = 0
        for ev in sse_events(r.iter_lines()):
            seen.append(ev)
            deltas += ev["event"] == "message.delta"
            if stop_after_deltas is not None and deltas == stop_after_deltas:
                c = httpx.post(f"{api.url}/v1/sessions/{session_id}/responses/{rid}/cancel", headers=auth(api))
                assert c.status_code == 202, c.text
    return seen


def text_of(events: list[Any]) -> str:
    return "".join(e["data"]["delta"] for e in events if e["event"] == "message.delta")


def test_a_session_streams_the_models_text_and_a_cancel_closes_the_upstream_call(
    api: LocalApi, upstream: FakeUpstream
) -> None:
    session = httpx.post(f"{api.url}/v1/sessions", headers=auth(api), json={"persistent": True}).json()["id"]
    events = stream_session_turn(api, session, "Tell me a very long story", stop_after_deltas=20)
    assert events[-1]["event"] == "message.cancelled"
    streamed = text_of(events)
    assert streamed and expected_text(20_000).startswith(streamed)  # the upstream's own words, in order
    record = upstream.last("long")
    assert record.wait_disconnected(timeout=30)  # the cancel closed the upstream connection itself
    assert record.tokens_sent < 20_000 and record.tokens_after_disconnect <= 1
    assert record.authorization == "Bearer sk-e2e-upstream-secret"  # the route's key, from its env name
    # nothing is billed for the cancelled turn, but its upstream cost is kept: an estimate, since
    # the provider never reported usage for a call it did not finish
    rid = events[0]["data"]["id"]
    body = httpx.get(f"{api.url}/v1/ledger", params={"response_id": rid}, headers=auth(api)).json()
    assert body["data"] == [] and body["upstream"]["estimated"] is True
    assert body["upstream"]["output_tokens"] >= len(streamed.split())
    # the next turn of the session sends the conversation so far: the first message and its reply
    stream_session_turn(api, session, "And then?", stop_after_deltas=1)
    second = upstream.last("long")
    assert second is not record
    sent = [(m["role"], m["content"]) for m in second.body["messages"]]
    assert sent[0] == ("user", "Tell me a very long story")
    assert sent[1][0] == "assistant" and sent[1][1].startswith(streamed[:40])
    assert sent[-1] == ("user", "And then?")


def test_an_llm_response_reports_the_providers_usage_and_sends_instructions_and_history(
    oa: openai.OpenAI, upstream: FakeUpstream, api: LocalApi
) -> None:
    first = oa.responses.create(model="short", input="Name a colour", instructions="Answer in one word.")
    assert first.status == "completed" and first.output_text == expected_text(12)
    sent = upstream.last("short").body
    assert sent["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert sent["messages"][-1] == {"role": "user", "content": "Name a colour"}
    # usage is the provider's own (the fake counts words sent; cached and reasoning tokens as reported)
    assert first.usage is not None and first.usage.output_tokens == 12 + 4
    assert first.usage.input_tokens == len("Answer in one word. Name a colour".split())
    assert first.usage.input_tokens_details.cached_tokens == 3
    assert first.usage.output_tokens_details.reasoning_tokens == 4
    second = oa.responses.create(model="short", input="Another", previous_response_id=first.id)
    assert second.status == "completed"
    history = [(m["role"], m["content"]) for m in upstream.last("short").body["messages"]]
    assert history == [("user", "Name a colour"), ("assistant", expected_text(12)), ("user", "Another")]
    # a response streamed by its own request is part of the chain too
    streamed = list(oa.responses.create(model="short", input="Streamed", previous_response_id=second.id, stream=True))
    assert isinstance(streamed[-1], ResponseCompletedEvent)
    third = streamed[-1].response
    oa.responses.create(model="short", input="Last", previous_response_id=third.id)
    history = [(m["role"], m["content"]) for m in upstream.last("short").body["messages"]]
    assert [m for m in history if m[0] == "user"] == [
        ("user", u) for u in ("Name a colour", "Another", "Streamed", "Last")
    ]
    assert all(content for _, content in history)
    # what the provider cost the platform, at the route's prices, is kept with the turn
    up = httpx.get(f"{api.url}/v1/ledger", params={"response_id": first.id}, headers=auth(api)).json()["upstream"]
    assert up["estimated"] is False and (up["input_tokens"], up["output_tokens"]) == (first.usage.input_tokens, 16)
    assert Decimal(up["cost_usd"]) == (2 * first.usage.input_tokens + 8 * 16) / Decimal(1_000_000)
    assert (up["route"], up["provider"], up["model"]) == ("short", "openai-chat", "short")


@pytest.mark.parametrize(
    "model",
    ["prefill", "thinking-first", "long"],
    ids=["during a silent prefill", "before the first token", "mid-stream"],
)
def test_an_llm_cancel_closes_the_upstream_call_in_every_phase(
    oa: openai.OpenAI, upstream: FakeUpstream, model: str
) -> None:
    before = len(upstream.records.all())
    r = oa.responses.create(model=model, input="Go", background=True)
    record = wait_for(
        lambda: next((x for x in upstream.records.all()[before:] if x.model == model), None), "the upstream call"
    )
    if model == "long":
        wait_for(lambda: record.tokens_sent >= 10, "some tokens")
    c = oa.responses.cancel(r.id)
    assert c.status == "cancelled"
    assert record.wait_disconnected(timeout=30)
    assert record.tokens_after_disconnect <= 1
    got = wait_for(lambda: (x := oa.responses.retrieve(r.id)).status == "cancelled" and x, "cancelled")
    assert got.status == "cancelled"


def test_an_upstream_that_keeps_failing_fails_the_response_with_a_safe_message(
    oa: openai.OpenAI, upstream: FakeUpstream
) -> None:
    r = oa.responses.create(model="down", input="Hi", background=True)
    got = wait_for(lambda: (x := oa.responses.retrieve(r.id)).status == "failed" and x, "failed", timeout=60)
    assert got.error is not None and "503" in got.error.message
    assert "upstream down" not in got.error.message and "sk-e2e" not in got.error.message


def test_an_unknown_model_is_the_dialects_documented_400(oa: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        oa.responses.create(model="meetkai:functionary-pt", input="Hi")  # not a configured route
    assert refused.value.code == "model_not_found"


def test_bedrock_streams_its_usage_and_a_cancel_closes_its_connection(
    oa: openai.OpenAI, upstream: FakeUpstream
) -> None:
    done = oa.responses.create(model="bedrock-short", input="Hello there")
    assert done.status == "completed" and done.output_text == expected_text(9)
    assert done.usage is not None and done.usage.output_tokens == 9
    # the same streamed by the request itself (the llm function runs it, not the worker)
    streamed = list(oa.responses.create(model="bedrock-short", input="Hello there", stream=True))
    assert isinstance(streamed[-1], ResponseCompletedEvent) and streamed[-1].response.output_text == expected_text(9)
    r = oa.responses.create(model="bedrock-long", input="Go", background=True)
    record = wait_for(lambda: (x := upstream.last("bedrock-long")) and x.tokens_sent >= 10 and x, "tokens")
    assert oa.responses.cancel(r.id).status == "cancelled"
    assert record.wait_disconnected(timeout=30) and record.tokens_after_disconnect <= 1


def test_the_responses_provider_also_cancels_upstream_so_billing_stops_server_side(
    oa: openai.OpenAI, upstream: FakeUpstream, api: LocalApi
) -> None:
    done = oa.responses.create(model="responses-short", input="Hi")
    assert done.status == "completed" and done.output_text == expected_text(7)
    r = oa.responses.create(model="responses-long", input="Go", background=True)
    record = wait_for(lambda: (x := upstream.last("responses-long")) and x.tokens_sent >= 10 and x, "tokens")
    assert oa.responses.cancel(r.id).status == "cancelled"
    assert record.wait(lambda x: x.cancelled_at is not None, timeout=30)  # the provider's own cancel was called
    assert record.tokens_after_cancel <= 1
    # its answer carried what the response used: that replaces the estimate kept with the turn
    up = wait_for(lambda: (u := upstream_of(api, r.id)) and u["estimated"] is False and u, "the provider's usage")
    assert up["output_tokens"] >= 10 and up["provider"] == "openai-responses"


def upstream_of(api: LocalApi, rid: str) -> Any:
    return httpx.get(f"{api.url}/v1/ledger", params={"response_id": rid}, headers=auth(api)).json().get("upstream")


def test_a_bad_models_document_stops_the_local_runtime_before_it_serves(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    bad = '{"routes": {"x": {"provider": "openai-chat", "model": "m"}}}'
    out = subprocess.run(
        [sys.executable, "-m", "turnstop_local", "serve", "--port", "0", "--store", "moto"],
        cwd=ROOT,
        env={**__import__("os").environ, "TURNSTOP_MODELS": bad, "TURNSTOP_STATE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "routes.x.base_url: is required for provider openai-chat" in out.stderr


# ----------------------------------------------------------------- tasks, omni and chat


def test_a_task_is_charged_at_its_routes_prices_and_settled_on_the_providers_usage(
    api: LocalApi, upstream: FakeUpstream
) -> None:
    with httpx.Client(base_url=api.url, headers=auth(api), timeout=60) as client:
        body = {
            "capability": "text.generate",
            "model": "short",
            "input": {"prompt": "Name a colour", "max_output_tokens": 100},
        }
        created = client.post("/v1/tasks", json=body)
        assert created.status_code == 202, created.text
        task_id = created.json()["task_id"]
        done = wait_for(
            lambda: (t := client.get(f"/v1/tasks/{task_id}").json())["status"] == "succeeded" and t,
            "the task to succeed",
        )
    assert done["output"]["text"] == expected_text(12)  # the thinking is not the output
    usage, billing = done["usage"], done["billing"]
    # the provider's usage (the fake counts the words sent; 12 text + 4 thinking tokens out)
    assert (usage["input_tokens"], usage["output_tokens"]) == (3, 16)
    # $2 / $8 per million tokens at $0.01 a credit; charged the most it could use, refunded the rest
    per_in, per_out = Decimal("0.0002"), Decimal("0.0008")
    earned = per_in * 3 + per_out * 16
    charged = Decimal(billing["charged_credits"])
    assert charged >= per_out * 100  # the charge held room for the whole output cap
    assert charged - Decimal(billing["refunded_credits"]) == earned


def test_an_omni_thread_sends_its_history_and_a_cancel_closes_the_upstream_call(
    api: LocalApi, upstream: FakeUpstream
) -> None:
    from clearstreet import ClearStreet

    omni = ClearStreet(api_key=api.key, base_url=api.url, max_retries=0).v1.omni_ai
    before = len(upstream.records.all())
    created = omni.threads.create_thread(type="instant", account_id=1, text="Explain stop buttons")
    first = wait_for(lambda: [r for r in upstream.records.all()[before:] if r.model == "long"], "the upstream call")[0]
    rid = created.data.response_id
    # some of the answer committed: a cancel keeps exactly what a poller could see then
    wait_for(
        lambda: (r := omni.responses.get_response_by_id(rid, account_id=1).data).content and r.content.parts, "output"
    )
    assert omni.responses.cancel_response(rid, account_id=1).data.canceled is True
    assert first.wait_disconnected(timeout=30)
    final = wait_for(
        lambda: (
            (r := omni.responses.get_response_by_id(created.data.response_id, account_id=1).data).status == "canceled"
            and r
        ),
        "canceled",
    )
    partial = "".join(getattr(p, "text", "") for p in (final.content.parts if final.content else []))
    follow = omni.threads.create_message(created.data.thread_id, text="Go on", account_id=1)
    second = wait_for(lambda: (r := upstream.last("long")) is not first and r, "the follow-up's upstream call")
    sent = [(m["role"], m["content"]) for m in second.body["messages"]]
    assert sent == [("user", "Explain stop buttons"), ("assistant", partial), ("user", "Go on")]
    omni.responses.cancel_response(follow.data.response_id, account_id=1)
    assert second.wait_disconnected(timeout=30)


def test_a_chat_reply_streams_the_models_tokens_and_a_cancel_closes_the_upstream_call(
    api: LocalApi, upstream: FakeUpstream
) -> None:
    from tests.e2e.test_chat_e2e import sign_in

    with closing(sign_in(api, "mallory")) as chat:
        seen: list[Any] = []
        some = threading.Event()
        before = len(upstream.records.all())

        def reader() -> None:
            with chat.stream("POST", "/chat/stream", json={"message": "Tell me everything"}) as s:
                seen.append(s.headers["X-Thread-Id"])
                for ev in sse_events(s.iter_lines()):
                    seen.append(ev)
                    if len(seen) > 6:
                        some.set()

        t = threading.Thread(target=reader)
        t.start()
        assert some.wait(timeout=60)
        record = next(r for r in upstream.records.all()[before:] if r.model == "long")
        assert chat.post("/chat/cancel", json={"thread_id": seen[0]}).json()["cancelled"] is True
        t.join(timeout=60)
        assert seen[-1]["event"] == "cancelled"
        tokens = "".join(e["data"]["data"]["text"] for e in seen[1:-1])
        assert tokens and expected_text(20_000).startswith(tokens)
        assert record.wait_disconnected(timeout=30)
        # the next message of the thread sends the conversation so far, the stopped reply included
        follow = {"message": "Go on", "thread_id": seen[0]}
        with chat.stream("POST", "/chat/stream", json=follow) as s:
            next(sse_events(s.iter_lines()))  # its first token: the model was called
        sent = [(m["role"], m["content"]) for m in upstream.last("long").body["messages"]]
        assert sent == [("user", "Tell me everything"), ("assistant", tokens), ("user", "Go on")]
        assert chat.post("/chat/cancel", json={"thread_id": seen[0]}).json()["cancelled"] is True
