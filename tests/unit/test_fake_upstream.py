"""The fake upstream model servers speak each protocol as the real clients read it, and notice a
client that leaves in every phase (docs/fake-upstream.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.config import Config
from botocore.eventstream import ParserError
from botocore.exceptions import EventStreamError, ReadTimeoutError

from turnstop_local.fake_upstream import Behaviour, Fail, FakeUpstream, expected_text, expected_thinking
from turnstop_local.fake_upstream.__main__ import behaviour_from

MESSAGES: Any = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "first question here"},
    {"role": "assistant", "content": "first answer"},
    {"role": "user", "content": [{"type": "text", "text": "and now this"}]},
]
INPUT_WORDS = 2 + 3 + 2 + 3


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def chat_client(upstream: FakeUpstream, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=upstream.openai_base_url, api_key="sk-test-key", max_retries=0, **kwargs)  # type: ignore[arg-type]


# -- Chat Completions ----------------------------------------------------------------------


def test_chat_stream_parses_with_the_sdk_including_thinking_and_usage(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(output_tokens=6, thinking_tokens=3, cached_tokens=4))
    stream = chat_client(upstream).chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}, temperature=0.25
    )
    chunks = list(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thinking = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    text = "".join(d.content or "" for d in deltas)
    assert (thinking, text) == (expected_thinking(3), expected_text(6))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (INPUT_WORDS, 9, INPUT_WORDS + 9)
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 4
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])

    record = upstream.last("m")
    assert record.wait_served()
    assert record.authorization == "Bearer sk-test-key"
    assert record.body["messages"] == MESSAGES and record.body["temperature"] == 0.25
    assert (record.status, record.tokens_sent, record.outcome, record.disconnected_at) == (200, 9, "completed", None)
    assert record.received_at <= record.headers_sent_at <= record.first_token_at <= record.finished_at  # type: ignore[operator]


def test_chat_max_tokens_ends_with_length_and_without_usage_when_not_asked(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(output_tokens=50))
    client = chat_client(upstream)
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True, max_tokens=5))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected_text(5)
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in chunks)

    whole = client.chat.completions.create(model="m", messages=MESSAGES, max_completion_tokens=7)
    assert whole.choices[0].message.content == expected_text(7)
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage is not None and whole.usage.completion_tokens == 7


def test_chat_keeps_the_connection_alive_between_requests(upstream: FakeUpstream) -> None:
    client = chat_client(upstream)
    for _ in range(3):
        client.chat.completions.create(model="any", messages=MESSAGES)
    # a stream read to its last chunk leaves the connection reusable too (the SDK itself stops
    # reading at [DONE] and drops the connection)
    with httpx.Client(base_url=upstream.openai_base_url) as http:
        for _ in range(3):
            with http.stream(
                "POST", "/chat/completions", json={"model": "any", "messages": MESSAGES, "stream": True}
            ) as r:
                assert r.read().endswith(b"data: [DONE]\n\n")
    upstream.wait_for(lambda rs: len(rs) == 6 and all(r.served_at for r in rs))
    records = upstream.records.all()
    assert [r.outcome for r in records] == ["completed"] * 6
    assert len({r.client for r in records[:3]}) == 1 and len({r.client for r in records[3:]}) == 1


@pytest.mark.parametrize(
    ("fail", "error"),
    [
        (Fail(429, retry_after=7), openai.RateLimitError),
        (Fail(500), openai.InternalServerError),
        (Fail(503), openai.InternalServerError),
        (Fail(400, message="context too long"), openai.BadRequestError),
        (Fail(401), openai.AuthenticationError),
    ],
)
def test_chat_error_statuses_surface_as_the_sdk_errors(
    upstream: FakeUpstream, fail: Fail, error: type[openai.APIStatusError]
) -> None:
    upstream.add_model("m", Behaviour(fail=fail))
    with pytest.raises(error) as raised:
        chat_client(upstream).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert raised.value.status_code == fail.status
    body = raised.value.body
    assert isinstance(body, dict) and {"message", "type", "param", "code"} <= body.keys()
    if fail.message:
        assert body["message"] == fail.message
    if fail.retry_after:
        assert raised.value.response.headers["retry-after"] == "7"


def test_chat_fails_the_first_requests_then_succeeds(upstream: FakeUpstream) -> None:
    upstream.add_model("flaky", Behaviour(output_tokens=3, fail=Fail(503, retry_after=0.01), fail_first=2))
    client = chat_client(upstream).with_options(max_retries=2)
    completion = client.chat.completions.create(model="flaky", messages=MESSAGES)
    assert completion.choices[0].message.content == expected_text(3)
    assert [r.status for r in upstream.records.for_model("flaky")] == [503, 503, 200]


def test_chat_garbage_and_in_stream_errors_raise(upstream: FakeUpstream) -> None:
    upstream.add_model("garbage", Behaviour(garbage=True))
    upstream.add_model("dies", Behaviour(output_tokens=10, fail=Fail(500, message="boom"), fail_after=2))
    client = chat_client(upstream)
    with pytest.raises(ValueError):  # the SSE data is not JSON
        list(client.chat.completions.create(model="garbage", messages=MESSAGES, stream=True))
    stream = client.chat.completions.create(model="dies", messages=MESSAGES, stream=True)
    texts = []
    with pytest.raises(openai.APIError, match="boom"):
        for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "")
    assert "".join(texts) == expected_text(2)


def test_chat_close_mid_stream_is_a_connection_error(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(output_tokens=10, close_after=3))
    stream = chat_client(upstream).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError):
        list(stream)
    record = upstream.last("m")
    assert record.wait_served() and (record.outcome, record.tokens_sent) == ("closed", 3)


def test_chat_disconnect_during_prefill_is_noticed(upstream: FakeUpstream) -> None:
    upstream.add_model("slow", Behaviour(prefill_s=60))
    with pytest.raises(openai.APITimeoutError):
        chat_client(upstream, timeout=0.3).chat.completions.create(model="slow", messages=MESSAGES, stream=True)
    record = upstream.last("slow")
    assert record.wait_disconnected(10) and record.wait_served(10)
    assert (record.status, record.headers_sent_at, record.tokens_sent) == (None, None, 0)


def test_chat_disconnect_after_headers_before_the_first_token_is_noticed(upstream: FakeUpstream) -> None:
    upstream.add_model("thinker", Behaviour(first_token_delay_s=60))
    client = chat_client(upstream)
    with client.chat.completions.with_streaming_response.create(model="thinker", messages=MESSAGES, stream=True) as r:
        assert r.http_response.status_code == 200
    record = upstream.last("thinker")
    assert record.wait_disconnected(10) and record.wait_served(10)
    assert record.headers_sent_at is not None and record.first_token_at is None and record.tokens_sent == 0


def test_chat_disconnect_mid_stream_stops_the_tokens(upstream: FakeUpstream) -> None:
    upstream.add_model("long", Behaviour(output_tokens=100_000, tokens_per_second=200))
    stream = chat_client(upstream).chat.completions.create(model="long", messages=MESSAGES, stream=True)
    seen = 0
    for chunk in stream:
        seen += bool(chunk.choices and chunk.choices[0].delta.content)
        if seen == 3:
            break
    stream.close()
    record = upstream.last("long")
    assert record.wait_disconnected(10) and record.wait_served(10)
    sent = record.tokens_sent
    assert 3 <= sent < 100_000 and record.tokens_after_disconnect <= 1 and record.finished_at is None
    assert len(record.token_times) == sent and max(record.token_times) <= record.disconnected_at  # type: ignore[operator]
    assert record.disconnected_at >= record.first_token_at  # type: ignore[operator]
    assert upstream.last("long").tokens_sent == sent


def test_chat_stall_is_ended_by_the_client_leaving(upstream: FakeUpstream) -> None:
    upstream.add_model("stuck", Behaviour(output_tokens=10, stall_after=2))
    stream = chat_client(upstream, timeout=0.3).chat.completions.create(model="stuck", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APITimeoutError):
        list(stream)
    record = upstream.last("stuck")
    assert record.wait_disconnected(10) and record.wait_served(10)
    assert (record.tokens_sent, record.outcome) == (2, "stalled")


def test_unknown_models_are_404_on_a_strict_server() -> None:
    with FakeUpstream(strict=True) as server:
        with pytest.raises(openai.NotFoundError):
            chat_client(server).chat.completions.create(model="nope", messages=MESSAGES)


# -- Bedrock ConverseStream ----------------------------------------------------------------

BEDROCK_MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
CONVERSE: Any = {
    "system": [{"text": "be brief"}],
    "messages": [
        {"role": "user", "content": [{"text": "first question here"}]},
        {"role": "assistant", "content": [{"text": "first answer"}]},
        {"role": "user", "content": [{"text": "and now this"}]},
    ],
}


def bedrock_client(upstream: FakeUpstream, read_timeout: float = 60) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=upstream.base_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout),
    )


def test_bedrock_converse_stream_parses_with_boto3_including_reasoning_and_usage(upstream: FakeUpstream) -> None:
    upstream.add_model(BEDROCK_MODEL, Behaviour(output_tokens=5, thinking_tokens=3, cached_tokens=2))
    answer = bedrock_client(upstream).converse_stream(
        modelId=BEDROCK_MODEL, inferenceConfig={"maxTokens": 100, "temperature": 0.5}, **CONVERSE
    )
    assert answer["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    events = list(answer["stream"])

    assert events[0] == {"messageStart": {"role": "assistant"}}
    deltas = [
        (e["contentBlockDelta"]["contentBlockIndex"], e["contentBlockDelta"]["delta"])
        for e in events
        if "contentBlockDelta" in e
    ]
    thinking = "".join(d["reasoningContent"].get("text", "") for i, d in deltas if "reasoningContent" in d)
    text = "".join(d["text"] for i, d in deltas if "text" in d)
    assert (thinking, text) == (expected_thinking(3), expected_text(5))
    assert {i for i, d in deltas if "text" in d} == {1} and any(
        "signature" in d.get("reasoningContent", {}) for _, d in deltas
    )
    assert [e["contentBlockStop"]["contentBlockIndex"] for e in events if "contentBlockStop" in e] == [0, 1]
    assert events[-2] == {"messageStop": {"stopReason": "end_turn"}}
    metadata = events[-1]["metadata"]
    assert metadata["usage"] == {
        "inputTokens": INPUT_WORDS - 2,
        "outputTokens": 8,
        "totalTokens": INPUT_WORDS + 8,
        "cacheReadInputTokens": 2,
        "cacheWriteInputTokens": 0,
    }
    assert metadata["metrics"]["latencyMs"] >= 0

    record = upstream.last(BEDROCK_MODEL)
    assert record.wait_served() and (record.outcome, record.tokens_sent) == ("completed", 8)
    assert record.body["messages"] == CONVERSE["messages"] and record.body["system"] == CONVERSE["system"]
    assert record.body["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.5}
    assert (record.authorization or "").startswith("AWS4-HMAC-SHA256 Credential=x/")


def test_bedrock_max_tokens_stops_with_max_tokens(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(output_tokens=50))
    events = list(
        bedrock_client(upstream).converse_stream(modelId="m", inferenceConfig={"maxTokens": 4}, **CONVERSE)["stream"]
    )
    assert "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    ) == expected_text(4)
    assert {"messageStop": {"stopReason": "max_tokens"}} in events
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 4


def test_bedrock_exception_frame_raises_the_event_stream_error(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(output_tokens=10, fail=Fail(429), fail_after=2))
    stream = bedrock_client(upstream).converse_stream(modelId="m", **CONVERSE)["stream"]
    seen = []
    with pytest.raises(EventStreamError) as raised:
        for event in stream:
            seen.append(event)
    assert raised.value.response["Error"]["Code"] == "throttlingException"
    assert len([e for e in seen if "contentBlockDelta" in e]) == 2


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "ThrottlingException"),
        (500, "InternalServerException"),
        (503, "ServiceUnavailableException"),
        (400, "ValidationException"),
    ],
)
def test_bedrock_http_errors_surface_as_the_modelled_exceptions(upstream: FakeUpstream, status: int, code: str) -> None:
    upstream.add_model("m", Behaviour(fail=Fail(status, retry_after=3)))
    client = bedrock_client(upstream)
    with pytest.raises(getattr(client.exceptions, code)) as raised:
        client.converse_stream(modelId="m", **CONVERSE)
    metadata = raised.value.response["ResponseMetadata"]
    assert metadata["HTTPStatusCode"] == status and metadata["HTTPHeaders"]["x-amzn-errortype"].startswith(code + ":")


def test_bedrock_garbage_fails_to_parse(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(garbage=True))
    with pytest.raises(ParserError):
        list(bedrock_client(upstream).converse_stream(modelId="m", **CONVERSE)["stream"])


def test_bedrock_disconnect_during_prefill_is_noticed(upstream: FakeUpstream) -> None:
    upstream.add_model("slow", Behaviour(prefill_s=60))
    with pytest.raises(ReadTimeoutError):
        bedrock_client(upstream, read_timeout=0.3).converse_stream(modelId="slow", **CONVERSE)
    record = upstream.last("slow")
    assert record.wait_disconnected(10) and record.wait_served(10)
    assert (record.headers_sent_at, record.tokens_sent) == (None, 0)


def test_bedrock_disconnect_mid_stream_stops_the_tokens(upstream: FakeUpstream) -> None:
    upstream.add_model("long", Behaviour(output_tokens=100_000, tokens_per_second=200))
    stream = bedrock_client(upstream).converse_stream(modelId="long", **CONVERSE)["stream"]
    for seen, _ in enumerate(stream, start=1):
        if seen == 4:
            break
    stream.close()
    record = upstream.last("long")
    assert record.wait_disconnected(10) and record.wait_served(10)
    assert 3 <= record.tokens_sent < 100_000 and record.tokens_after_disconnect <= 1 and record.finished_at is None


def test_the_command_line_reads_behaviours() -> None:
    name, behaviour = behaviour_from(
        'slow={"prefill_s": 2, "fail": {"status": 429, "retry_after": 1}, "fail_first": 1}'
    )
    assert (name, behaviour.prefill_s, behaviour.fail, behaviour.fail_first) == ("slow", 2, Fail(429, retry_after=1), 1)


def test_a_request_past_fail_first_streams_to_the_end(upstream: FakeUpstream) -> None:
    upstream.add_model("m", Behaviour(output_tokens=4, fail=Fail(503), fail_first=1, fail_after=2))
    client = chat_client(upstream)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected_text(4)


def test_a_server_that_keeps_generating_counts_the_tokens_no_one_read(upstream: FakeUpstream) -> None:
    upstream.add_model("deaf", Behaviour(output_tokens=40, tokens_per_second=1000, keeps_generating=True))
    stream = chat_client(upstream).chat.completions.create(model="deaf", messages=MESSAGES, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    record = upstream.last("deaf")
    assert record.wait_served(10) and record.disconnected_at is not None
    assert record.tokens_sent + record.tokens_after_disconnect == 40 and record.tokens_after_disconnect > 0
