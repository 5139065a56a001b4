"""The call base's own rules, with scripted attempts (no network)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from turnstop.providers.base import CallAborted, Chunk, UpstreamError, UpstreamErrorKind
from turnstop.providers.calls import StreamingCall, parse_retry_after, status_error, usage_from
from turnstop.providers.config import Route
from turnstop.providers.transport import AbortableTransport

ROUTE = Route("r", "openai-chat", "m", base_url="http://127.0.0.1:9/v1", retry_budget_s=5)


class Scripted(StreamingCall):
    """Each attempt plays the next script: a list of chunks and errors, in order."""

    provider = "scripted-test"

    def __init__(self, *scripts: list[Any], route: Route = ROUTE) -> None:
        super().__init__(route)
        self.scripts = list(scripts)

    def _attempt(self, transport: AbortableTransport) -> Generator[Chunk, None, None]:
        for step in self.scripts.pop(0):
            if isinstance(step, BaseException):
                raise step
            yield Chunk(step)
        self.finish_reason = "stop"


def server_error(status: int = 503, retry_after: float | None = 0) -> UpstreamError:
    return status_error("x", status, retry_after=retry_after)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("turnstop.providers.calls.BACKOFF_BASE_S", 0.0)


def run(call: StreamingCall) -> tuple[list[str], BaseException | None]:
    chunks: list[str] = []
    try:
        for chunk in call:
            chunks.append(chunk.text)
    except (UpstreamError, CallAborted) as e:
        return chunks, e
    return chunks, None


def test_retryable_errors_before_the_first_chunk_are_retried() -> None:
    call = Scripted([server_error()], [server_error(429)], ["a", "b"])
    assert run(call) == (["a", "b"], None)
    assert call.attempts == 3 and call.finish_reason == "stop"


def test_nothing_is_retried_after_the_first_chunk() -> None:
    call = Scripted(["a", server_error()], ["never"])
    chunks, error = run(call)
    assert chunks == ["a"] and isinstance(error, UpstreamError) and call.attempts == 1


def test_rejections_and_bad_responses_are_not_retried() -> None:
    for error in (server_error(400), UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "x")):
        call = Scripted([error], ["never"])
        assert run(call)[1] is error and call.attempts == 1


def test_a_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    call = Scripted([server_error(429, retry_after=60)], ["never"])
    _, error = run(call)
    assert isinstance(error, UpstreamError) and error.kind is UpstreamErrorKind.RATE_LIMITED and call.attempts == 1


def test_an_exhausted_budget_ends_with_the_last_error() -> None:
    call = Scripted(*([server_error()] for _ in range(50)), route=Route("r", "openai-chat", "m", retry_budget_s=0))
    _, error = run(call)
    assert isinstance(error, UpstreamError) and error.status == 503 and call.attempts == 1


def test_an_abort_before_iteration_raises_call_aborted_without_an_attempt() -> None:
    call = Scripted(["a"])
    call.abort()
    assert isinstance(run(call)[1], CallAborted) and call.attempts == 0


def test_an_abort_between_chunks_raises_call_aborted() -> None:
    call = Scripted(["a", "b", "c"])
    chunks: Iterator[Chunk] = iter(call)
    assert next(chunks).text == "a"
    call.abort()
    with pytest.raises(CallAborted):
        next(chunks)


def test_a_call_iterates_once() -> None:
    call = Scripted(["a"])
    run(call)
    with pytest.raises(RuntimeError):
        iter(call)


def test_a_raised_error_carries_no_chained_exception() -> None:
    call = Scripted([ValueError("upstream body with a secret")], route=Route("r", "openai-chat", "m", retry_budget_s=0))
    _, error = run(call)
    assert isinstance(error, UpstreamError)
    assert error.__cause__ is None and error.__context__ is None and "secret" not in str(error)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("2") == 2.0 and parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("nan") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 20 < (parse_retry_after(later) or 0) <= 31
    assert parse_retry_after(email.utils.formatdate(time.time() - 30, usegmt=True)) == 0.0


def test_status_kinds_and_safe_messages() -> None:
    assert status_error("p", 429).kind is UpstreamErrorKind.RATE_LIMITED
    assert status_error("p", 502).kind is UpstreamErrorKind.SERVER
    assert status_error("p", 401).kind is UpstreamErrorKind.REJECTED
    assert str(status_error("p", 404)) == "p: the upstream answered HTTP 404 (rejected)"


def test_usage_from_ignores_odd_numbers() -> None:
    usage = usage_from(10, "7", -1, True)
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.reasoning_tokens) == (10, 0, None, None)
    assert not usage.estimated
