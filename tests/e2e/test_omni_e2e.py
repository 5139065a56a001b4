"""The omni dialect end to end with the official ``clearstreet`` SDK, unchanged except for
``base_url``, against the local runtime (template.yaml's routes, authorizer, queue, worker).

The main flow uses ``_strict_response_validation=True`` so every body must validate against
the SDK's own models, not only parse."""

from __future__ import annotations

from typing import Any

import clearstreet
import pytest
from clearstreet import ClearStreet

from tests.e2e.conftest import LocalApi, wait_for

ACCOUNT = 1
LONG = "Write a 3000-word essay on the history of US equity markets."


def error_body(raised: Any) -> dict[str, Any]:
    """The JSON error body an SDK exception carries (typed ``object`` by the SDK)."""
    body = raised.value.body
    assert isinstance(body, dict)
    return body


@pytest.fixture
def sdk(local_api: LocalApi) -> ClearStreet:
    return ClearStreet(api_key=local_api.key, base_url=local_api.url, max_retries=0, _strict_response_validation=True)


def poll_until(sdk: ClearStreet, response_id: str, statuses: set[str]) -> Any:
    def check() -> Any:
        r = sdk.v1.omni_ai.responses.get_response_by_id(response_id, account_id=ACCOUNT).data
        return r if r.status in statuses else None

    return wait_for(check, f"response {response_id} to reach {statuses}")


def text_of(response: Any) -> str:
    parts = response.content.parts if response.content else []
    return "".join(getattr(p, "text", "") for p in parts if p.type == "text")


def test_cancel_a_long_answer_mid_run_leaves_a_canceled_assistant_message_in_the_history(sdk: ClearStreet) -> None:
    omni = sdk.v1.omni_ai
    # Given a thread asking for a long answer, polled until it runs
    created = omni.threads.create_thread(type="instant", account_id=ACCOUNT, text=LONG)
    assert created.metadata.request_id
    thread_id, response_id = created.data.thread_id, created.data.response_id
    running = wait_for(
        lambda: (
            (r := sdk.v1.omni_ai.responses.get_response_by_id(response_id, account_id=ACCOUNT).data).status == "running"
            and r.content
            and r.content.parts
            and r
        ),
        "the response to run and write",
    )
    assert running.output_message_id is None
    # and some of its answer committed (a poller sees it; a cancel keeps exactly that much)
    wait_for(lambda: text_of(omni.responses.get_response_by_id(response_id, account_id=ACCOUNT).data), "output")
    active = omni.threads.get_thread_response(thread_id, account_id=ACCOUNT).data
    assert active is not None and active.id == response_id
    # When the client cancels it
    cancel = omni.responses.cancel_response(response_id, account_id=ACCOUNT)
    assert cancel.data.canceled is True and cancel.metadata.request_id
    # Then the response reads canceled at once, with the text committed when the cancel was
    # accepted, and ends with exactly that
    final = poll_until(sdk, response_id, {"canceled"})
    assert final.output_message_id
    parts = final.content.parts if final.content else []
    partial = "".join(getattr(p, "text", "") for p in parts if p.type == "text")
    assert 0 < len(partial.split()) < 3000
    # and the thread history holds the USER message and, once the worker has written the end,
    # the canceled ASSISTANT message
    page = wait_for(
        lambda: len((p := omni.threads.get_messages(thread_id, account_id=ACCOUNT)).data) == 2 and p,
        "the ASSISTANT message",
    )
    roles = [(m.seq, m.role, m.outcome) for m in page.data]
    assert roles == [(1, "USER", "completed"), (2, "ASSISTANT", "canceled")]
    message = page.data[1]
    assert message.id == final.output_message_id
    assert [p.type for p in message.content.parts] == ["text"] and getattr(
        message.content.parts[0], "text", None
    ) == partial
    # and cancelling again is an idempotent success that still says canceled
    assert omni.responses.cancel_response(response_id, account_id=ACCOUNT).data.canceled is True
    # and once its worker has ended it, the thread has no active response (until then the
    # canceled one stays active, reading canceled, and a new message is refused)
    wait_for(lambda: omni.threads.get_thread_response(thread_id, account_id=ACCOUNT).data is None, "an idle thread")
    thread = omni.threads.get_thread_by_id(thread_id, account_id=ACCOUNT).data
    assert thread.id == thread_id and thread.title
    assert thread_id in [t.id for t in omni.threads.get_threads(account_id=ACCOUNT, page_size=100).data]


def test_cancel_after_completion_says_not_canceled_and_a_follow_up_continues_the_thread(sdk: ClearStreet) -> None:
    omni = sdk.v1.omni_ai
    created = omni.threads.create_thread(type="instant", account_id=ACCOUNT, text="Write a 5-word note")
    final = poll_until(sdk, created.data.response_id, {"succeeded"})
    assert final.content and len(final.content.parts[0].text.split()) == 5
    for _ in range(2):
        assert omni.responses.cancel_response(created.data.response_id, account_id=ACCOUNT).data.canceled is False
    follow = omni.threads.create_message(created.data.thread_id, text="Write a 3-word reply", account_id=ACCOUNT)
    poll_until(sdk, follow.data.response_id, {"succeeded"})
    page = omni.threads.get_messages(created.data.thread_id, account_id=ACCOUNT)
    assert [(m.seq, m.role, m.outcome) for m in page.data] == [
        (1, "USER", "completed"),
        (2, "ASSISTANT", "completed"),
        (3, "USER", "completed"),
        (4, "ASSISTANT", "completed"),
    ]


def test_a_message_while_a_response_runs_is_one_409_even_with_the_sdks_default_retries(local_api: LocalApi) -> None:
    sdk = ClearStreet(api_key=local_api.key, base_url=local_api.url)  # max_retries=2 by default
    omni = sdk.v1.omni_ai
    created = omni.threads.create_thread(type="instant", account_id=ACCOUNT, text=LONG)
    with pytest.raises(clearstreet.ConflictError) as busy:
        omni.threads.create_message(created.data.thread_id, text="hello?", account_id=ACCOUNT)
    assert busy.value.response.headers["x-should-retry"] == "false"
    assert error_body(busy)["error"]["code"] == 409
    omni.responses.cancel_response(created.data.response_id, account_id=ACCOUNT)
    page = omni.threads.get_messages(created.data.thread_id, account_id=ACCOUNT)
    assert [m.role for m in page.data if m.role == "USER"] == ["USER"]


def test_the_seeds_error_cases_through_the_sdks_error_types(sdk: ClearStreet, local_api: LocalApi) -> None:
    omni = sdk.v1.omni_ai
    created = omni.threads.create_thread(type="instant", account_id=ACCOUNT, text=LONG)
    rid = created.data.response_id
    # 400: account_id missing, exactly as the seed; and a clear 400 when it is not a number
    with pytest.raises(clearstreet.BadRequestError) as missing:
        omni.responses.cancel_response(rid)
    assert missing.value.status_code == 400
    assert error_body(missing)["error"] == {
        "code": 400,
        "message": "Failed to deserialize query string: missing field `account_id`",
    }
    assert error_body(missing)["metadata"]["request_id"]
    with pytest.raises(clearstreet.BadRequestError) as not_numeric:
        omni.responses.cancel_response(rid, extra_query={"account_id": "abc"})
    assert "account_id" in error_body(not_numeric)["error"]["message"]
    # 403: the key may not act for that account
    with pytest.raises(clearstreet.PermissionDeniedError) as forbidden:
        omni.responses.cancel_response(rid, account_id=7)
    assert error_body(forbidden)["error"] == {
        "code": 403,
        "message": "The caller does not have permission to execute the specified operation",
    }
    # 404: unknown, malformed, another account's, another tenant's
    for call in (
        lambda: omni.responses.cancel_response("00000000-0000-4000-8000-000000000000", account_id=ACCOUNT),
        lambda: omni.responses.cancel_response("not-an-id", account_id=ACCOUNT),
        lambda: omni.responses.cancel_response(rid, account_id=2),
        lambda: omni.responses.get_response_by_id(rid, account_id=2),
    ):
        with pytest.raises(clearstreet.NotFoundError) as nf:
            call()
        assert error_body(nf)["error"] == {"code": 404, "message": "Response not found"}
    other = ClearStreet(api_key=local_api.make_key("other-tenant", "1"), base_url=local_api.url, max_retries=0)
    with pytest.raises(clearstreet.NotFoundError):
        other.v1.omni_ai.responses.cancel_response(rid, account_id=ACCOUNT)
    # none of that touched the response: it is still in flight and cancellable
    assert omni.responses.get_response_by_id(rid, account_id=ACCOUNT).data.status in ("queued", "running")
    assert omni.responses.cancel_response(rid, account_id=ACCOUNT).data.canceled is True
    # bad bodies: a clear 400 in the same shape
    with pytest.raises(clearstreet.BadRequestError) as empty:
        omni.threads.create_thread(type="instant", account_id=ACCOUNT, text="")
    assert "text" in error_body(empty)["error"]["message"]
    with pytest.raises(clearstreet.BadRequestError) as big:
        omni.threads.create_message(
            created.data.thread_id,
            text="hi",
            account_id=ACCOUNT,
            context={"items": [{"kind": "blob", "label": "big", "data": {"x": "y" * 70_000}}]},
        )
    assert "64 KiB" in error_body(big)["error"]["message"]
    # a missing key is a 401 in the seed's shape
    anonymous = ClearStreet(api_key="nope", base_url=local_api.url, max_retries=0)
    with pytest.raises(clearstreet.AuthenticationError) as unauth:
        anonymous.v1.omni_ai.responses.cancel_response(rid, account_id=ACCOUNT)
    assert error_body(unauth)["error"]["code"] == 401
