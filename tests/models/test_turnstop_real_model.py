"""turnstop in front of the real inference server: the local runtime routes every turn to llama.cpp's
server through the ``openai-chat`` provider (``TURNSTOP_MODELS``). For the sessions dialect (SSE
stream + cancel) and the llm dialect (openai SDK, background response + cancel): the model's real
text and usage come through, and a cancel makes the server stop decoding, mid-stream and during
a long prefill.

The server decodes greedily, so the answers are the same every run: the capital question ends
after a few tokens, and the essay runs on to the route's output cap (2,048 tokens) unless stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import sse_events
from tests.models.conftest import (
    QUIET_POLL_S,
    ROUTE,
    ROUTE_MAX_OUTPUT_TOKENS,
    Llama,
    Prefill,
    Turnstop,
    long_prompt,
    poll,
)

CAPITAL = "What is the capital of France? Answer in one word."
ESSAY = "Write a 5000-word essay on cryptography."
# Tokens the server may decode between the cancel's answer and the connection's close: the
# runner looks for the cancel every 200 ms and the model decodes 25-100 tokens a second here.
# Not stopped, the essay would go on to the 2,048-token cap.
AFTER_CANCEL_SLACK = 200


@pytest.fixture
def client(turnstop: Turnstop) -> Iterator[httpx.Client]:
    with turnstop.client() as c:
        yield c


@pytest.fixture
def oa(turnstop: Turnstop) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=turnstop.key, base_url=f"{turnstop.url}/api/v1/llm", max_retries=0) as c:
        yield c


class SessionTurn:
    """A session message whose SSE stream is read on a thread."""

    def __init__(self, client: httpx.Client, sid: str, message: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.rid = ""
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(client, sid, message), daemon=True)
        self._thread.start()
        assert self._started.wait(timeout=60), "no X-Response-Id"

    def _read(self, client: httpx.Client, sid: str, message: str) -> None:
        with client.stream("POST", f"/v1/sessions/{sid}/messages", json={"message": message}) as response:
            self.rid = response.headers["X-Response-Id"]
            self._started.set()
            for event in sse_events(response.iter_lines()):
                self.events.append(event)

    def deltas(self) -> list[str]:
        return [e["data"]["delta"] for e in list(self.events) if e["event"] == "message.delta"]

    def finish(self) -> list[dict[str, Any]]:
        self._thread.join(timeout=120)
        assert not self._thread.is_alive(), "the stream did not end"
        return self.events


def new_session(client: httpx.Client) -> str:
    response = client.post("/v1/sessions", json={"persistent": False})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# ============================================================================== sessions


def test_sessions_a_turn_streams_the_models_text_and_usage(
    llama: Llama, client: httpx.Client, measurements: dict[str, Any]
) -> None:
    llama.wait_idle(every=QUIET_POLL_S)
    before = llama.metrics()
    turn = SessionTurn(client, new_session(client), CAPITAL)
    events = turn.finish()
    assert events[-1]["event"] == "message.completed", events[-1]
    text = "".join(turn.deltas())
    assert "Paris" in text, text
    usage = events[-1]["data"]["usage"]
    decoded = llama.metrics()["tokens_predicted_total"] - before["tokens_predicted_total"]
    assert usage["output_tokens"] == decoded, (usage, decoded)  # the server's count, not words
    assert usage["input_tokens"] > len(CAPITAL.split())  # the chat template's tokens too
    measurements["sessions: a completed turn"] = f"{text!r}, usage {usage}"


def test_sessions_a_cancel_mid_stream_frees_the_servers_slot(
    llama: Llama, client: httpx.Client, measurements: dict[str, Any]
) -> None:
    llama.wait_idle(every=QUIET_POLL_S)
    before = llama.metrics()
    sid = new_session(client)
    turn = SessionTurn(client, sid, ESSAY)
    poll(lambda: len(turn.deltas()) >= 8, "8 deltas", every=0.05)
    read = len(turn.deltas())
    cancel = client.post(f"/v1/sessions/{sid}/responses/{turn.rid}/cancel")
    assert cancel.status_code == 202, cancel.text
    cancelled = time.monotonic()
    freed = llama.wait_idle(every=0.05)  # mid-stream: a 0.05 s poll does not hide the disconnect
    events = turn.finish()
    assert events[-1]["event"] == "message.cancelled", events[-1]
    assert events[-1]["data"]["billed"] is False
    decoded = int(llama.metrics()["tokens_predicted_total"] - before["tokens_predicted_total"])
    measurements["sessions: slot freed after a cancel mid-stream"] = (
        f"{freed - cancelled:.2f} s after the cancel's 202; {decoded} tokens decoded, {read} read before the cancel"
    )
    assert read <= decoded < read + AFTER_CANCEL_SLACK < ROUTE_MAX_OUTPUT_TOKENS, (read, decoded)


def test_sessions_a_cancel_during_a_long_prefill_stops_it(
    llama: Llama, client: httpx.Client, full_prefill: Prefill, measurements: dict[str, Any]
) -> None:
    llama.wait_idle(every=QUIET_POLL_S)
    before = llama.metrics()
    sid = new_session(client)
    turn = SessionTurn(client, sid, long_prompt("sessions"))
    llama.wait_busy()  # the provider's request is in the server's prefill
    cancel = client.post(f"/v1/sessions/{sid}/responses/{turn.rid}/cancel")
    assert cancel.status_code == 202, cancel.text
    cancelled = time.monotonic()
    freed = llama.wait_idle(every=QUIET_POLL_S)
    events = turn.finish()
    assert events[-1]["event"] == "message.cancelled", events[-1]
    assert not turn.deltas()
    prefill_stopped(llama, before, full_prefill, measurements, "sessions", freed - cancelled)


# ============================================================================== llm


def test_llm_a_background_response_carries_the_models_text_and_usage(
    llama: Llama, oa: openai.OpenAI, measurements: dict[str, Any]
) -> None:
    llama.wait_idle(every=QUIET_POLL_S)
    before = llama.metrics()
    created = oa.responses.create(model=ROUTE, input=CAPITAL, background=True)
    done = poll_response(oa, created.id, lambda r: r.status not in ("queued", "in_progress"))
    assert done.status == "completed", done
    assert "Paris" in done.output_text, done.output_text
    decoded = llama.metrics()["tokens_predicted_total"] - before["tokens_predicted_total"]
    assert done.usage is not None and done.usage.output_tokens == decoded, (done.usage, decoded)
    assert done.usage.input_tokens > len(CAPITAL.split())
    measurements["llm: a completed background response"] = f"{done.output_text!r}, usage {done.usage}"


def test_llm_a_cancel_mid_stream_frees_the_servers_slot(
    llama: Llama, oa: openai.OpenAI, measurements: dict[str, Any]
) -> None:
    llama.wait_idle(every=QUIET_POLL_S)
    before = llama.metrics()
    created = oa.responses.create(model=ROUTE, input=ESSAY, background=True)
    poll_response(oa, created.id, lambda r: len(r.output_text) >= 40)
    cancel = oa.responses.cancel(created.id)
    assert cancel.status == "cancelled", cancel
    cancelled = time.monotonic()
    read = cancel.usage.output_tokens if cancel.usage else 0
    freed = llama.wait_idle(every=0.05)
    decoded = int(llama.metrics()["tokens_predicted_total"] - before["tokens_predicted_total"])
    measurements["llm: slot freed after a cancel mid-stream"] = (
        f"{freed - cancelled:.2f} s after the cancel's answer; {decoded} tokens decoded, {read} in the cancelled response"
    )
    assert 0 < decoded < read + AFTER_CANCEL_SLACK < ROUTE_MAX_OUTPUT_TOKENS, (read, decoded)
    final = poll_response(oa, created.id, lambda r: r.status == "cancelled")
    assert final.output_text == cancel.output_text


def test_llm_a_cancel_during_a_long_prefill_stops_it(
    llama: Llama, oa: openai.OpenAI, full_prefill: Prefill, measurements: dict[str, Any]
) -> None:
    llama.wait_idle(every=QUIET_POLL_S)
    before = llama.metrics()
    created = oa.responses.create(model=ROUTE, input=long_prompt("llm"), background=True)
    llama.wait_busy()
    cancel = oa.responses.cancel(created.id)
    assert cancel.status == "cancelled", cancel
    cancelled = time.monotonic()
    freed = llama.wait_idle(every=QUIET_POLL_S)
    assert poll_response(oa, created.id, lambda r: r.status == "cancelled").output_text == ""
    prefill_stopped(llama, before, full_prefill, measurements, "llm", freed - cancelled)


# ============================================================================== helpers


def poll_response(oa: openai.OpenAI, rid: str, done: Any, timeout: float = 300) -> Any:
    """Retrieve the response until ``done(response)``; the last one retrieved."""
    last: Any = None

    def check() -> bool:
        nonlocal last
        last = oa.responses.retrieve(rid)
        return bool(done(last))

    poll(check, f"response {rid}", every=0.1, timeout=timeout)
    return last


def prefill_stopped(
    llama: Llama,
    before: dict[str, float],
    full: Prefill,
    measurements: dict[str, Any],
    dialect: str,
    freed_after_s: float,
) -> None:
    """The cancelled turn's prefill stopped part-way, and no token was decoded."""
    after = llama.metrics()
    steps = int(after["n_decode_total"] - before["n_decode_total"])
    prefilled = int(after["prompt_tokens_total"] - before["prompt_tokens_total"])
    measurements[f"{dialect}: slot freed after a cancel during prefill"] = (
        f"within {freed_after_s:.1f} s of the cancel's answer (polled every {QUIET_POLL_S:.0f} s), after "
        f"{prefilled} of {full.prompt_tokens} prompt tokens ({steps} of {full.decode_steps} decode steps)"
    )
    assert after["tokens_predicted_total"] == before["tokens_predicted_total"], "a token was decoded"
    assert 1 <= steps < full.decode_steps, (steps, full)
    assert 0 < prefilled < full.prompt_tokens, (prefilled, full)
