"""The fake Responses API, read by the real openai SDK: background streams, resume, retrieve,
cancel (docs/fake-upstream.md). Chat Completions and Bedrock: test_fake_upstream.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseTextDeltaEvent,
)

from turnstop_local.fake_upstream import Behaviour, Fail, FakeUpstream, expected_text, expected_thinking

INPUT: Any = [
    {"role": "user", "content": "first question here"},
    {"role": "assistant", "content": [{"type": "output_text", "text": "first answer"}]},
    {"role": "user", "content": [{"type": "input_text", "text": "and now this"}]},
]
INSTRUCTIONS = "be brief"
INPUT_WORDS = 2 + 3 + 2 + 3


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def client_for(upstream: FakeUpstream, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=upstream.openai_base_url, api_key="sk-test-key", max_retries=0, **kwargs)


def create(client: openai.OpenAI, model: str, **kwargs: Any) -> Any:
    return client.responses.create(
        model=model, input=INPUT, instructions=INSTRUCTIONS, background=True, stream=True, **kwargs
    )


def deltas(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


def test_background_stream_parses_with_the_sdk(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(output_tokens=5, thinking_tokens=3, cached_tokens=2))
    events = list(
        create(client_for(upstream), "m", max_output_tokens=100, temperature=0.5, reasoning={"summary": "auto"})
    )

    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert isinstance(events[0], ResponseCreatedEvent) and events[0].response.status == "queued"
    assert isinstance(events[1], ResponseInProgressEvent)
    assert isinstance(events[2], ResponseOutputItemAddedEvent) and events[2].item.type == "reasoning"
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert (summary, deltas(events)) == (expected_thinking(3), expected_text(5))
    text_events = [e for e in events if isinstance(e, ResponseTextDeltaEvent)]
    assert {(e.output_index, e.content_index, e.item_id) for e in text_events} == {(1, 0, text_events[0].item_id)}
    done = events[-1]
    assert isinstance(done, ResponseCompletedEvent) and done.response.status == "completed"
    assert done.response.output_text == expected_text(5) and done.response.background is True
    usage = done.response.usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (
        INPUT_WORDS,
        8,
        INPUT_WORDS + 8,
    )
    assert usage.input_tokens_details.cached_tokens == 2 and usage.output_tokens_details.reasoning_tokens == 3

    record = upstream.last("m")
    assert record.wait_served() and record.response_id == done.response.id
    assert (record.outcome, record.tokens_sent, record.disconnected_at) == ("completed", 8, None)
    assert record.authorization == "Bearer sk-test-key"
    assert (record.body["input"], record.body["instructions"], record.body["max_output_tokens"]) == (
        INPUT,
        INSTRUCTIONS,
        100,
    )


def test_thinking_without_a_summary_passes_silently(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(output_tokens=2, thinking_tokens=4))
    events = list(create(client_for(upstream), "m"))
    assert not [e for e in events if "reasoning_summary" in e.type]
    assert deltas(events) == expected_text(2) and events[-1].response.usage.output_tokens_details.reasoning_tokens == 4


def test_max_output_tokens_ends_incomplete_and_failures_fail(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(output_tokens=50))
    upstream.add_model("dies", Behaviour(output_tokens=10, fail=Fail(500, message="boom"), fail_after=3))
    client = client_for(upstream)
    events = list(create(client, "m", max_output_tokens=6))
    assert isinstance(events[-1], ResponseIncompleteEvent) and deltas(events) == expected_text(6)
    assert (
        events[-1].response.incomplete_details and events[-1].response.incomplete_details.reason == "max_output_tokens"
    )
    failed = list(create(client, "dies"))
    assert isinstance(failed[-1], ResponseFailedEvent) and failed[-1].response.error is not None
    assert failed[-1].response.error.message == "boom" and deltas(failed) == expected_text(3)


def test_resume_after_a_dropped_connection_continues_from_the_cursor(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(output_tokens=12, close_after=4))
    client = client_for(upstream)
    seen: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for event in create(client, "m"):
            seen.append(event)
    assert deltas(seen) == expected_text(4)
    cursor = seen[-1].sequence_number
    rest = list(client.responses.retrieve(seen[0].response.id, stream=True, starting_after=cursor))
    assert rest[0].sequence_number == cursor + 1
    assert deltas(seen) + deltas(rest) == expected_text(12) and rest[-1].type == "response.completed"
    resumed = upstream.last("m")
    assert resumed.method == "GET" and resumed.wait_served() and resumed.outcome == "completed"


def test_background_generation_outlives_its_stream_until_cancelled(upstream: FakeUpstream) -> None:
    upstream.add_model("long", Behaviour(output_tokens=100_000, tokens_per_second=500))
    client = client_for(upstream)
    stream = create(client, "long")
    response_id = next(iter(stream)).response.id
    stream.close()
    record = upstream.last("long")
    assert record.wait_disconnected(10)
    upstream.wait_for(lambda _: record.tokens_after_disconnect >= 5, timeout=10)  # nobody reads, it generates

    cancelled = client.responses.cancel(response_id)
    assert cancelled.status == "cancelled" and cancelled.id == response_id
    response = upstream.responses.get(response_id)
    assert response is not None and response.wait_stopped(10)
    generated = response.generated
    assert record.cancelled_at is not None and record.tokens_after_cancel == 0
    assert client.responses.retrieve(response_id).status == "cancelled"
    assert response.generated == generated < 100_000
    assert max(response.token_times) <= record.cancelled_at  # nothing generated after the cancel
    cancel_record = next(r for r in upstream.records.all() if r.path.endswith("/cancel"))
    assert (
        cancel_record.path.endswith(f"/responses/{response_id}/cancel")
        and cancel_record.cancelled_at == record.cancelled_at
    )


def test_cancel_mid_stream_ends_the_readers_stream(upstream: FakeUpstream) -> None:
    upstream.add_model("long", Behaviour(output_tokens=100_000, tokens_per_second=500))
    client = client_for(upstream)
    events: list[Any] = []
    for event in create(client, "long"):
        events.append(event)
        if event.type == "response.output_text.delta" and len(deltas(events).split()) == 3:
            client.responses.cancel(events[0].response.id)
    assert (
        events[-1].type == "response.output_text.delta"
    )  # the stream ended after the cancel, without a terminal event
    record = upstream.records.all()[0]
    assert record.wait_served() and record.outcome == "cancelled" and record.cancelled_at is not None
    assert with_status(client, events[0].response.id) == "cancelled"


def with_status(client: openai.OpenAI, response_id: str) -> str:
    return client.responses.retrieve(response_id).status or ""


def test_background_without_stream_answers_queued_then_completes(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(output_tokens=3))
    client = client_for(upstream)
    queued = client.responses.create(model="m", input="hello there", background=True)
    assert queued.status == "queued" and queued.background is True
    response = upstream.responses.get(queued.id)
    assert response is not None and response.wait_stopped()
    done = client.responses.retrieve(queued.id)
    assert (done.status, done.output_text) == ("completed", expected_text(3))


def test_a_foreground_stream_stops_generating_when_its_reader_leaves(upstream: FakeUpstream) -> None:
    upstream.add_model("long", Behaviour(output_tokens=100_000, tokens_per_second=500))
    client = client_for(upstream)
    stream: Any = client.responses.create(model="long", input="hi", stream=True)
    response_id = next(iter(stream)).response.id
    stream.close()
    record = upstream.last("long")
    response = upstream.responses.get(response_id)
    assert record.wait_disconnected(10) and response is not None and response.wait_stopped(10)
    assert response.generated < 100_000 and record.tokens_after_disconnect <= 1


def test_errors_surface_as_the_sdk_errors(upstream: FakeUpstream) -> None:
    upstream.add_model("limited", Behaviour(fail=Fail(429, retry_after=2)))
    upstream.add_model("m", Behaviour(output_tokens=2))
    client = client_for(upstream)
    with pytest.raises(openai.RateLimitError):
        create(client, "limited")
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_unknown")
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_unknown")
    done = list(create(client, "m"))[-1].response
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(done.id)
