"""The ``openai-responses`` provider against the shared fake upstream's Responses API.

The fake generates each background response on its own thread, records when a stream's client
left, when a response was cancelled and how many tokens it generated after that, and serves
``GET /v1/responses/{id}?stream=true&starting_after=N`` for resume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.unit.test_provider_openai_chat import Outcome, start
from tests.unit.test_provider_transport import DEADLINE_S, RawServer, servers, wait_until
from turnstop.providers.base import CallAborted, Chunk, Message, ModelRequest, UpstreamError, UpstreamErrorKind
from turnstop.providers.config import Route
from turnstop.providers.openai_responses import OpenAIResponsesCall, OpenAIResponsesProvider
from turnstop_local.fake_upstream import Behaviour, Fail, FakeUpstream, RequestRecord, expected_text, expected_thinking

__all__ = ["servers"]

KEY = "sk-test-RESPONSES-KEY-5678"
SECRET = "upstream-detail-that-must-not-leak"


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def route(upstream: FakeUpstream, model: str, **changes: Any) -> Route:
    values: dict[str, Any] = {"base_url": upstream.openai_base_url, "max_output_tokens": 64, **changes}
    return Route("resp", "openai-responses", model, **values)


def open_call(
    upstream: FakeUpstream, model: str, behaviour: Behaviour, request: ModelRequest | None = None, **changes: Any
) -> OpenAIResponsesCall:
    upstream.add_model(model, behaviour)
    return OpenAIResponsesProvider(route(upstream, model, **changes), KEY).open(request or ModelRequest("hi there"))


def creates(upstream: FakeUpstream) -> list[RequestRecord]:
    return [r for r in upstream.records.all() if r.method == "POST" and r.path.endswith("/responses")]


def cancels(upstream: FakeUpstream) -> list[RequestRecord]:
    return [r for r in upstream.records.all() if r.path.endswith("/cancel")]


def text_of(outcome: Outcome) -> str:
    return "".join(c.text for c in outcome.chunks if c.kind == "text")


def test_streams_text_thinking_finish_reason_and_usage(upstream: FakeUpstream) -> None:
    request = ModelRequest("one two three", sampling={"reasoning_effort": "low"})
    call = open_call(upstream, "m", Behaviour(output_tokens=5, thinking_tokens=3, cached_tokens=2), request)
    outcome = start(call).wait()
    assert outcome.error is None, outcome.error
    thinking = "".join(c.text for c in outcome.chunks if c.kind == "thinking")
    assert (thinking, text_of(outcome)) == (expected_thinking(3), expected_text(5))
    assert outcome.chunks[0].kind == "thinking" and outcome.chunks[-1].kind == "text"
    assert call.finish_reason == "stop" and call.response_id
    assert call.usage is not None and not call.usage.estimated
    assert (call.usage.input_tokens, call.usage.output_tokens) == (3, 8)
    assert (call.usage.cached_tokens, call.usage.reasoning_tokens) == (2, 3)
    assert not cancels(upstream) and call.settled.is_set()


def test_sends_instructions_history_input_cap_and_background(upstream: FakeUpstream) -> None:
    request = ModelRequest(
        "And now?",
        instructions="Be brief.",
        history=(Message("user", "Hi"), Message("assistant", "Yo")),
        max_output_tokens=1000,
        sampling={"temperature": 0.5, "seed": 3},
    )
    start(open_call(upstream, "m", Behaviour(output_tokens=2), request)).wait()
    record = upstream.last("m")
    assert record.path == "/v1/responses" and record.authorization == f"Bearer {KEY}"
    body = record.body
    assert body["instructions"] == "Be brief." and body["model"] == "m"
    assert body["input"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Yo"},
        {"role": "user", "content": "And now?"},
    ]
    assert body["max_output_tokens"] == 64  # capped by the route
    assert (body["background"], body["stream"], body["store"], body["temperature"]) == (True, True, True, 0.5)
    assert "seed" not in body and "reasoning" not in body


def test_an_answer_cut_at_the_cap_finishes_with_length(upstream: FakeUpstream) -> None:
    call = open_call(upstream, "m", Behaviour(output_tokens=50), ModelRequest("hi", max_output_tokens=4))
    outcome = start(call).wait()
    assert outcome.error is None and text_of(outcome) == expected_text(4)
    assert call.finish_reason == "length" and call.usage is not None and call.usage.output_tokens == 4


@pytest.mark.parametrize("phase", ["thinking silently", "mid-stream"])
def test_abort_shuts_the_stream_and_cancels_the_response_upstream(upstream: FakeUpstream, phase: str) -> None:
    behaviour = (
        Behaviour(first_token_delay_s=60)
        if phase == "thinking silently"
        else Behaviour(output_tokens=10_000, tokens_per_second=200)
    )
    call = open_call(upstream, "m", behaviour)
    outcome = start(call)
    if phase == "mid-stream":
        wait_until(lambda: outcome.chunks, what="the first token")
    else:
        wait_until(lambda: call.response_id, what="response.created")
    call.abort()
    outcome.wait()
    assert isinstance(outcome.error, CallAborted), outcome.error
    created = creates(upstream)[0]
    assert created.wait_disconnected(DEADLINE_S), "the stream was not closed"
    assert created.wait(lambda r: r.cancelled_at is not None, DEADLINE_S), "the response was not cancelled"
    assert created.tokens_after_cancel == 0
    assert call.settled.wait(DEADLINE_S)
    assert call.usage is not None and not call.usage.estimated  # the cancel's answer carried the usage
    cancel = cancels(upstream)[0]
    assert cancel.path == f"/v1/responses/{call.response_id}/cancel" and cancel.authorization == f"Bearer {KEY}"
    assert len(creates(upstream)) == 1


def test_abort_before_the_response_exists_only_shuts_the_connection(upstream: FakeUpstream) -> None:
    call = open_call(upstream, "m", Behaviour(prefill_s=60))  # silent before the headers
    outcome = start(call)
    record = upstream.last("m")
    call.abort()
    outcome.wait()
    assert isinstance(outcome.error, CallAborted)
    assert record.wait_disconnected(DEADLINE_S)
    assert call.settled.wait(DEADLINE_S)  # nothing to cancel: no response was created
    assert call.response_id is None and not cancels(upstream)


def test_abort_while_connecting(servers: Callable[..., RawServer]) -> None:
    server = servers(accept=False)
    call = OpenAIResponsesProvider(Route("r", "openai-responses", "m", base_url=server.url + "/v1"), KEY).open(
        ModelRequest("hi")
    )
    outcome = start(call)
    wait_until(lambda: (t := call._transport) is not None and t._sockets, what="the connect")
    call.abort()
    outcome.wait()
    assert isinstance(outcome.error, CallAborted) and call.response_id is None


def test_a_dropped_stream_is_resumed_after_the_last_event(upstream: FakeUpstream) -> None:
    call = open_call(upstream, "m", Behaviour(output_tokens=8, close_after=3, tokens_per_second=100))
    outcome = start(call).wait()
    assert outcome.error is None, outcome.error
    assert text_of(outcome) == expected_text(8)  # nothing lost, nothing twice
    assert call.finish_reason == "stop" and call.usage is not None and call.usage.output_tokens == 8
    resumes = upstream.wait_for(lambda rs: [r for r in rs if r.method == "GET"])
    resume = resumes[0]
    assert resume.path == f"/v1/responses/{call.response_id}"  # with starting_after: the text above has no repeats
    assert len(creates(upstream)) == 1 and not cancels(upstream)


def test_429_then_success_is_retried(upstream: FakeUpstream) -> None:
    call = open_call(upstream, "m", Behaviour(output_tokens=3, fail=Fail(429, SECRET, retry_after=0), fail_first=1))
    outcome = start(call).wait()
    assert outcome.error is None and text_of(outcome) == expected_text(3)
    assert len(creates(upstream)) == 2 and call.attempts == 2


def test_a_failed_response_after_the_first_token_is_not_retried(upstream: FakeUpstream) -> None:
    call = open_call(upstream, "m", Behaviour(output_tokens=10, fail=Fail(500, SECRET), fail_after=2))
    outcome = start(call).wait()
    assert text_of(outcome) == expected_text(2)
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.SERVER
    assert SECRET not in str(outcome.error) and len(creates(upstream)) == 1 and not cancels(upstream)


def test_garbage_is_a_bad_response(upstream: FakeUpstream) -> None:
    outcome = start(open_call(upstream, "m", Behaviour(garbage=True))).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.BAD_RESPONSE


@pytest.mark.parametrize("status", [401, 404, 500])
def test_errors_never_carry_the_key_or_the_upstream_body(upstream: FakeUpstream, status: int) -> None:
    call = open_call(upstream, "m", Behaviour(fail=Fail(status, f"{SECRET} {KEY}")), retry_budget_s=0)
    error = start(call).wait().error
    assert isinstance(error, UpstreamError) and error.status == status
    shown = f"{error} {error!r} {error.__cause__!r} {error.__context__!r}"
    assert KEY not in shown and SECRET not in shown
    assert KEY not in repr(OpenAIResponsesProvider(route(upstream, "m"), KEY))


def test_a_first_token_timeout_cancels_the_orphaned_response(upstream: FakeUpstream) -> None:
    call = open_call(upstream, "m", Behaviour(first_token_delay_s=60), first_byte_timeout_s=0.5)
    outcome = start(call).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.TIMEOUT
    created = creates(upstream)[0]
    assert created.wait(lambda r: r.cancelled_at is not None, DEADLINE_S), "the orphan was not cancelled"
    assert len(creates(upstream)) == 1


def test_chunks_are_plain_text(upstream: FakeUpstream) -> None:
    outcome = start(open_call(upstream, "m", Behaviour(output_tokens=2))).wait()
    assert outcome.chunks == [Chunk("alpha"), Chunk(" bravo")]
