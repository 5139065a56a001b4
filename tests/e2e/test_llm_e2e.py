"""The llm dialect end to end through both official SDKs (openai, meetkai-mka1), unchanged
except for the base URL, against the local runtime over real HTTP with the worker on the queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from mka1 import SDK
from mka1.errors import SDKError
from mka1.utils.retries import RetryConfig

from tests.e2e.conftest import LocalApi, wait_for

# the flows `make run` serves, on DynamoDB Local and on moto's server alike
pytestmark = pytest.mark.each_store

MODEL = "meetkai:functionary-urdu-mini-pak"
ESSAY = "Write a 5000-word essay"


@pytest.fixture
def oa(local_api: LocalApi) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=local_api.key, base_url=f"{local_api.url}/api/v1/llm", max_retries=0) as c:
        yield c


def oa_as(local_api: LocalApi, end_user: str | None = None, key: str | None = None) -> openai.OpenAI:
    headers = {"X-On-Behalf-Of": end_user} if end_user else None
    return openai.OpenAI(
        api_key=key or local_api.key, base_url=f"{local_api.url}/api/v1/llm", max_retries=0, default_headers=headers
    )


@pytest.fixture
def mk(local_api: LocalApi) -> SDK:
    return SDK(bearer_auth=local_api.key, server_url=local_api.url, retry_config=RetryConfig("none", None, False))


def ledger(local_api: LocalApi, rid: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{local_api.url}/v1/ledger", params={"response_id": rid}, headers={"Authorization": f"Bearer {local_api.key}"}
    )
    assert r.status_code == 200
    return list(r.json()["data"])


def words_so_far(client: openai.OpenAI, rid: str, at_least: int) -> bool:
    return len(client.responses.retrieve(rid).output_text.split()) >= at_least


# ====================================================================== openai


def test_openai_long_background_response_cancelled_then_retrieved_cancelled(
    oa: openai.OpenAI, local_api: LocalApi
) -> None:
    # Given a long background response that has started writing
    r = oa.responses.create(model=MODEL, input=ESSAY, background=True)
    assert r.status in ("queued", "in_progress") and r.background is True
    wait_for(lambda: words_so_far(oa, r.id, 10), "some output")
    # When it is cancelled
    c = oa.responses.cancel(r.id)
    # Then the answer is the cancelled response with the output so far and its usage
    assert c.status == "cancelled" and c.id == r.id
    assert (
        c.usage is not None
        and 10 <= c.usage.output_tokens < 5000
        and len(c.output_text.split()) == c.usage.output_tokens
    )
    # and retrieving it shows the same cancelled response, once the worker has stopped
    got = wait_for(lambda: (x := oa.responses.retrieve(r.id)).status == "cancelled" and x, "cancelled")
    assert (
        got.output_text == c.output_text and got.usage is not None and got.usage.output_tokens == c.usage.output_tokens
    )
    # and cancelling again returns the final object again
    again = oa.responses.cancel(r.id)
    assert again.status == "cancelled" and again.output_text == c.output_text
    # and nothing was billed for it
    entries = wait_for(lambda: ledger(local_api, r.id), "ledger entry")
    assert [e["kind"] for e in entries] == ["usage"] and entries[0]["billed"] is False


def test_openai_completed_response_is_billed_once_and_cancel_returns_it_unchanged(
    oa: openai.OpenAI, local_api: LocalApi
) -> None:
    r = oa.responses.create(model=MODEL, input="Write a 7-word note", background=True)
    done = wait_for(lambda: (x := oa.responses.retrieve(r.id)).status == "completed" and x, "completed")
    assert len(done.output_text.split()) == 7
    c = oa.responses.cancel(r.id)
    assert c.status == "completed" and c.output_text == done.output_text
    kinds = sorted(e["kind"] for e in wait_for(lambda: ledger(local_api, r.id), "ledger"))
    assert kinds == ["debit", "usage"]


def test_openai_retrieve_stream_starting_after_replays_only_later_events(oa: openai.OpenAI) -> None:
    r = oa.responses.create(model=MODEL, input="Write a 6-word note", background=True)
    wait_for(lambda: oa.responses.retrieve(r.id).status == "completed", "completed")
    full = list(oa.responses.retrieve(r.id, stream=True))
    later = list(oa.responses.retrieve(r.id, stream=True, starting_after=5))
    assert full[0].type == "response.created" and full[-1].type == "response.completed"
    assert [e.sequence_number for e in later] == [e.sequence_number for e in full if e.sequence_number > 5]
    assert later[0].sequence_number == 6 and later[-1].type == "response.completed"
    # the SDK's stream helper (filters on the client) agrees
    with oa.responses.stream(response_id=r.id, starting_after=5) as s:
        assert [e.sequence_number for e in s] == [e.sequence_number for e in later]


def test_openai_streamed_background_response_cancelled_mid_stream_ends_with_response_cancelled(
    oa: openai.OpenAI, local_api: LocalApi
) -> None:
    stream = oa.responses.create(model=MODEL, input=ESSAY, background=True, stream=True)
    seen: list[Any] = []
    rid = None
    with oa_as(local_api) as other:
        for ev in stream:
            seen.append(ev)
            if ev.type == "response.created":
                rid = ev.response.id
            if ev.type == "response.output_text.delta" and ev.sequence_number == 10:
                assert rid is not None
                assert other.responses.cancel(rid).status == "cancelled"
    assert seen[0].type == "response.created" and seen[-1].type == "response.cancelled"
    assert seen[-1].response["status"] == "cancelled"  # openai has no cancelled event class: a dict
    deltas = sum(e.type == "response.output_text.delta" for e in seen)
    assert 6 <= deltas < 5000  # six were seen when the cancel was sent
    assert [e.sequence_number for e in seen] == list(range(1, len(seen) + 1))


def test_openai_end_user_isolation(local_api: LocalApi) -> None:
    with oa_as(local_api, "user-a") as a, oa_as(local_api, "user-b") as b, oa_as(local_api) as service:
        r = a.responses.create(model=MODEL, input=ESSAY, background=True)
        with pytest.raises(openai.NotFoundError):
            b.responses.retrieve(r.id)
        with pytest.raises(openai.NotFoundError):
            b.responses.cancel(r.id)
        assert a.responses.retrieve(r.id).status in ("queued", "in_progress")
        assert service.responses.retrieve(r.id).id == r.id
        assert a.responses.cancel(r.id).status == "cancelled"


def test_openai_error_types_for_400_401_404(oa: openai.OpenAI, local_api: LocalApi) -> None:
    with pytest.raises(openai.BadRequestError) as e400:
        oa.responses.retrieve("not-a-response")
    assert e400.value.param == "response_id" and e400.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as model_err:
        oa.responses.create(model="gpt-unknown", input="hi", background=True)
    assert model_err.value.code == "model_not_found" and model_err.value.param == "model"
    with pytest.raises(openai.BadRequestError):
        oa.responses.create(model=MODEL, input=42, background=True)  # type: ignore[call-overload]
    with pytest.raises(openai.NotFoundError) as e404:
        oa.responses.cancel("resp_doesnotexist1")
    assert e404.value.code == "not_found"
    with oa_as(local_api, key="ts_wrong_key") as bad:
        for call in (
            lambda: bad.responses.create(model=MODEL, input="hi", background=True),
            lambda: bad.responses.retrieve("resp_abc"),
            lambda: bad.responses.cancel("resp_abc"),
        ):
            with pytest.raises(openai.AuthenticationError) as e401:
                call()
            assert e401.value.code == "invalid_api_key"


def test_openai_bad_stream_queries_and_foreground_cancel_are_400(oa: openai.OpenAI) -> None:
    r = oa.responses.create(model=MODEL, input="Write a 3-word note", background=True)
    wait_for(lambda: oa.responses.retrieve(r.id).status == "completed", "completed")
    for after in (-1, 10_000):
        with pytest.raises(openai.BadRequestError) as e:
            oa.responses.retrieve(r.id, stream=True, starting_after=after)
        assert e.value.param == "starting_after"
    fg = oa.responses.create(model=MODEL, input="Write a 3-word note")
    assert fg.status == "completed" and fg.background is False
    with pytest.raises(openai.BadRequestError) as e:
        oa.responses.cancel(fg.id)
    assert e.value.code == "response_not_cancellable"
    assert oa.responses.retrieve(fg.id).status == "completed"


def test_openai_body_over_the_limit_is_413_in_openai_shape(oa: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as e:
        oa.responses.create(model=MODEL, input="x" * 300_000, background=True)
    assert e.value.status_code == 413 and e.value.code == "request_too_large"


# ====================================================================== meetkai-mka1


def test_mka1_long_background_response_cancelled_then_retrieved_cancelled(mk: SDK) -> None:
    r = mk.llm.responses.create(model=MODEL, input=ESSAY, background=True)
    wait_for(lambda: len((mk.llm.responses.get(response_id=r.id).output_text or "").split()) >= 10, "output")
    c = mk.llm.responses.cancel(response_id=r.id)
    assert c.status == "cancelled" and c.usage.output_tokens >= 10
    got = wait_for(lambda: (x := mk.llm.responses.get(response_id=r.id)).status == "cancelled" and x, "cancelled")
    assert got.output_text == c.output_text
    again = mk.llm.responses.cancel(response_id=r.id)
    assert again.status == "cancelled" and again.output_text == c.output_text


def test_mka1_stream_starting_after_and_cancelled_event(mk: SDK) -> None:
    r = mk.llm.responses.create(model=MODEL, input=ESSAY, background=True)
    wait_for(lambda: len((mk.llm.responses.get(response_id=r.id).output_text or "").split()) >= 5, "output")
    with mk.llm.responses.get(response_id=r.id, stream=True, starting_after=3) as es:
        events = []
        for sse in es:
            events.append(sse.data)
            if len(events) == 4:
                mk.llm.responses.cancel(response_id=r.id)
    assert events[0].sequence_number == 4
    assert [e.sequence_number for e in events] == list(range(4, 4 + len(events)))
    assert type(events[-1]).__name__ == "ResponseCancelledEvent" and events[-1].response.status == "cancelled"
    assert all(not type(e).__name__.startswith("Unknown") for e in events)


def test_mka1_streamed_create_cancelled_mid_stream(mk: SDK) -> None:
    stream = mk.llm.responses.create(model=MODEL, input=ESSAY, background=True, stream=True)
    events = []
    with stream as es:
        for sse in es:
            events.append(sse.data)
            if sse.data.type == "response.output_text.delta" and sse.data.sequence_number == 8:
                mk.llm.responses.cancel(response_id=events[0].response.id)
    assert events[0].type == "response.created"
    assert events[-1].type == "response.cancelled" and events[-1].response.status == "cancelled"


def test_mka1_end_user_isolation(mk: SDK) -> None:
    r = mk.llm.responses.create(model=MODEL, input=ESSAY, background=True, x_on_behalf_of="user-a")
    for call in (
        lambda: mk.llm.responses.get(response_id=r.id, x_on_behalf_of="user-b"),
        lambda: mk.llm.responses.cancel(response_id=r.id, x_on_behalf_of="user-b"),
    ):
        with pytest.raises(SDKError) as e:
            call()
        assert e.value.status_code == 404
    assert mk.llm.responses.get(response_id=r.id, x_on_behalf_of="user-a").id == r.id
    assert mk.llm.responses.cancel(response_id=r.id, x_on_behalf_of="user-a").status == "cancelled"


def test_mka1_error_statuses_for_400_401_404(mk: SDK, local_api: LocalApi) -> None:
    for call, status in (
        (lambda: mk.llm.responses.get(response_id="bad-id"), 400),
        (lambda: mk.llm.responses.cancel(response_id="resp_unknown42"), 404),
        (lambda: mk.llm.responses.create(model="nope", input="hi", background=True), 400),
    ):
        with pytest.raises(SDKError) as e:
            call()
        assert e.value.status_code == status and '"error"' in e.value.body
    bad = SDK(bearer_auth="ts_wrong_key", server_url=local_api.url, retry_config=RetryConfig("none", None, False))
    with pytest.raises(SDKError) as e:
        bad.llm.responses.cancel(response_id="resp_abc")
    assert e.value.status_code == 401
