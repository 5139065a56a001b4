"""``openai-chat`` and ``bedrock-converse`` against the shared, protocol-exact fake upstream.

The raw-socket tests (``test_provider_openai_chat.py``, ``test_provider_bedrock_converse.py``)
pin each phase exactly; these check the same providers against the fake that speaks each
protocol byte for byte as the real services do, and that records when the client left and how
many tokens it generated after that (0: the cancel stopped generation).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.test_provider_openai_chat import Outcome, start
from tests.unit.test_provider_transport import DEADLINE_S, wait_until
from turnstop.providers.base import CallAborted, Message, ModelCall, ModelRequest, UpstreamError, UpstreamErrorKind
from turnstop.providers.bedrock_converse import BedrockConverseProvider
from turnstop.providers.config import Route
from turnstop.providers.openai_chat import OpenAIChatProvider
from turnstop_local.fake_upstream import Behaviour, Fail, FakeUpstream, expected_text, expected_thinking

KEY = "sk-test-SHARED-FAKE-9999"
SECRET = "fake-upstream-detail-never-shown"
PROVIDERS = ("openai-chat", "bedrock-converse")


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUpstream]:
    for name, value in (("AWS_ACCESS_KEY_ID", "AKIDTEST"), ("AWS_SECRET_ACCESS_KEY", "secret-test")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with FakeUpstream() as fake:
        yield fake


def open_call(
    upstream: FakeUpstream,
    provider: str,
    model: str,
    behaviour: Behaviour,
    request: ModelRequest | None = None,
    **changes: Any,
) -> ModelCall:
    upstream.add_model(model, behaviour)
    request = request or ModelRequest("one two three")
    values: dict[str, Any] = {"max_output_tokens": 64, **changes}
    if provider == "openai-chat":
        return OpenAIChatProvider(Route("r", provider, model, base_url=upstream.openai_base_url, **values), KEY).open(
            request
        )
    route = Route("r", provider, model, region="us-east-1", endpoint_url=upstream.base_url, **values)
    return BedrockConverseProvider(route).open(request)


def texts(outcome: Outcome) -> tuple[str, str]:
    return (
        "".join(c.text for c in outcome.chunks if c.kind == "thinking"),
        "".join(c.text for c in outcome.chunks if c.kind == "text"),
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streams_the_exact_text_thinking_and_usage(upstream: FakeUpstream, provider: str) -> None:
    request = ModelRequest(
        "one two three", instructions="be brief", history=(Message("user", "hi"), Message("assistant", "hello"))
    )
    call = open_call(upstream, provider, "m", Behaviour(output_tokens=6, thinking_tokens=2, cached_tokens=1), request)
    outcome = start(call).wait()
    assert outcome.error is None, outcome.error
    assert texts(outcome) == (expected_thinking(2), expected_text(6))
    assert call.finish_reason == "stop"
    assert call.usage is not None and not call.usage.estimated
    assert call.usage.input_tokens == 7  # every word sent, the cached one included
    assert call.usage.output_tokens == 8 and call.usage.cached_tokens == 1
    assert upstream.last("m").outcome == "completed"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_route_caps_the_output(upstream: FakeUpstream, provider: str) -> None:
    call = open_call(
        upstream,
        provider,
        "m",
        Behaviour(output_tokens=100),
        ModelRequest("x", max_output_tokens=500),
        max_output_tokens=5,
    )
    outcome = start(call).wait()
    assert outcome.error is None and texts(outcome)[1] == expected_text(5)
    assert call.finish_reason == "length"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("phase", ["prefill", "first token", "mid-stream"])
def test_an_abort_disconnects_and_generation_stops(upstream: FakeUpstream, provider: str, phase: str) -> None:
    behaviour = {
        "prefill": Behaviour(prefill_s=60),
        "first token": Behaviour(first_token_delay_s=60),
        "mid-stream": Behaviour(output_tokens=100_000, tokens_per_second=500),
    }[phase]
    call = open_call(upstream, provider, "m", behaviour)
    outcome = start(call)
    record = upstream.last("m")
    if phase == "first token":
        record.wait(lambda r: r.headers_sent_at is not None, DEADLINE_S)
    elif phase == "mid-stream":
        wait_until(lambda: outcome.chunks, what="the first token")
    call.abort()
    outcome.wait()
    assert isinstance(outcome.error, CallAborted), outcome.error
    assert record.wait_disconnected(DEADLINE_S), "the upstream never saw the disconnect"
    assert record.wait_served(DEADLINE_S) and record.tokens_after_disconnect <= 1
    assert len(upstream.records.all()) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limited_then_success_is_retried(upstream: FakeUpstream, provider: str) -> None:
    call = open_call(
        upstream, provider, "m", Behaviour(output_tokens=3, fail=Fail(429, SECRET, retry_after=0), fail_first=1)
    )
    outcome = start(call).wait()
    assert outcome.error is None and texts(outcome)[1] == expected_text(3)
    assert len(upstream.records.for_model("m")) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failure_after_the_first_token_is_not_retried(upstream: FakeUpstream, provider: str) -> None:
    call = open_call(upstream, provider, "m", Behaviour(output_tokens=10, fail=Fail(500, SECRET), fail_after=2))
    outcome = start(call).wait()
    assert texts(outcome)[1] == expected_text(2)
    error = outcome.error
    assert isinstance(error, UpstreamError) and error.kind is UpstreamErrorKind.SERVER and SECRET not in str(error)
    assert len(upstream.records.all()) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("misbehaviour", ["garbage", "close"])
def test_garbage_and_a_close_mid_stream_are_bad_responses(
    upstream: FakeUpstream, provider: str, misbehaviour: str
) -> None:
    behaviour = Behaviour(garbage=True) if misbehaviour == "garbage" else Behaviour(output_tokens=10, close_after=3)
    outcome = start(open_call(upstream, provider, "m", behaviour)).wait()
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.BAD_RESPONSE
    assert len(upstream.records.all()) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stall_mid_stream_is_an_idle_timeout(upstream: FakeUpstream, provider: str) -> None:
    call = open_call(upstream, provider, "m", Behaviour(output_tokens=10, stall_after=2), idle_timeout_s=0.3)
    outcome = start(call).wait()
    assert texts(outcome)[1] == expected_text(2)
    assert isinstance(outcome.error, UpstreamError) and outcome.error.kind is UpstreamErrorKind.TIMEOUT
    assert upstream.last("m").wait_disconnected(DEADLINE_S)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [400, 403, 503])
def test_errors_never_carry_the_key_or_the_body(upstream: FakeUpstream, provider: str, status: int) -> None:
    call = open_call(upstream, provider, "m", Behaviour(fail=Fail(status, f"{SECRET} {KEY}")), retry_budget_s=0)
    error = start(call).wait().error
    assert isinstance(error, UpstreamError) and error.status == status
    shown = f"{error} {error!r} {error.__cause__!r} {error.__context__!r}"
    assert KEY not in shown and SECRET not in shown and "AKIDTEST" not in shown
