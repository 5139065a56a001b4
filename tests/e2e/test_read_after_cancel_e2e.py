"""Read-your-writes after a cancel, in every dialect with a read route, through each dialect's
real client: a read made at once after the cancel's answer says what the cancel said, and the
state the turn ends in agrees with both.

The local runtime checks the cancel flag once a second here (tests/e2e/conftest.py), so a read
right after the answer comes before the worker has noticed the flag: what it shows is the head
as the cancel left it (running, flag set), rendered by the read route."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import openai
import pytest
from clearstreet import ClearStreet

from tests.e2e.conftest import LocalApi, sse_events, wait_for
from tests.e2e.test_chat_e2e import MEETING, sign_in

LONG = "Write a 5000-word essay on stop buttons"
LLM_MODEL = "meetkai:functionary-urdu-mini-pak"
ACCOUNT = 1


@pytest.fixture
def client(local_api: LocalApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_api.url, headers={"Authorization": f"Bearer {local_api.key}"}, timeout=60) as c:
        yield c


def test_llm_a_retrieve_right_after_a_cancel_says_cancelled_with_the_output_it_ends_with(
    local_api: LocalApi, client: httpx.Client
) -> None:
    with openai.OpenAI(api_key=local_api.key, base_url=f"{local_api.url}/api/v1/llm", max_retries=0) as oa:
        # Given a background response that is running
        r = oa.responses.create(model=LLM_MODEL, input=LONG, background=True)
        wait_for(lambda: len(oa.responses.retrieve(r.id).output_text.split()) >= 3, "some output")
        # When it is cancelled and at once retrieved
        cancelled = oa.responses.cancel(r.id)
        read = oa.responses.retrieve(r.id)
        again = oa.responses.cancel(r.id)
        # Then the read says what the cancel said: cancelled, with the same output and usage
        assert cancelled.status == read.status == again.status == "cancelled"
        assert read.output_text == cancelled.output_text and read.usage == cancelled.usage
        # and the turn ends with exactly that (its usage entry is written by its finish)
        wait_for(lambda: client.get("/v1/ledger", params={"response_id": r.id}).json()["data"], "the finish")
        final = oa.responses.retrieve(r.id)
        assert final.status == "cancelled" and final.output_text == read.output_text and final.usage == read.usage
        assert final.output == read.output


def test_omni_a_get_right_after_a_delete_says_canceled_with_the_parts_it_ends_with(local_api: LocalApi) -> None:
    sdk = ClearStreet(api_key=local_api.key, base_url=local_api.url, max_retries=0, _strict_response_validation=True)
    omni = sdk.v1.omni_ai
    # Given a running response with some text
    created = omni.threads.create_thread(type="instant", account_id=ACCOUNT, text=LONG)
    thread_id, rid = created.data.thread_id, created.data.response_id

    def running_with_text() -> bool:
        got = omni.responses.get_response_by_id(rid, account_id=ACCOUNT).data
        return got.status == "running" and bool(got.content and got.content.parts)

    wait_for(running_with_text, "the response to run and write")
    # When it is cancelled and at once read
    assert omni.responses.cancel_response(rid, account_id=ACCOUNT).data.canceled is True
    read = omni.responses.get_response_by_id(rid, account_id=ACCOUNT).data
    # Then the read says canceled, as the cancel did
    assert read.status == "canceled" and read.output_message_id
    # and the response ends with exactly the parts that read showed, in the thread's history too
    history = wait_for(
        lambda: [m for m in omni.threads.get_messages(thread_id, account_id=ACCOUNT).data if m.role == "ASSISTANT"],
        "the canceled ASSISTANT message",
    )
    final = omni.responses.get_response_by_id(rid, account_id=ACCOUNT).data
    assert final.status == "canceled" and final.output_message_id == read.output_message_id == history[0].id
    assert final.content == read.content and history[0].outcome == "canceled"
    text = "".join(getattr(p, "text", "") for p in (read.content.parts if read.content else []))
    assert [getattr(p, "text", None) for p in history[0].content.parts] == [text]


def test_tasks_a_get_right_after_a_cancel_says_what_the_202_said_and_ends_with_its_output(
    client: httpx.Client,
) -> None:
    # Given a running task with some output
    body = {"capability": "text.generate", "model": "auto", "input": {"prompt": LONG}}
    tid = client.post("/v1/tasks", json=body).json()["task_id"]
    wait_for(lambda: client.get(f"/v1/tasks/{tid}").json()["usage"]["output_tokens"] >= 3, "some output")
    # When it is cancelled and at once read
    cancel = client.post(f"/v1/tasks/{tid}/cancel", json={"reason": "read-your-writes"})
    read = client.get(f"/v1/tasks/{tid}").json()
    # Then the read says what the 202 said (the seed's best-effort cancel: running, cancel requested)
    answer = cancel.json()
    assert cancel.status_code == 202 and answer["status"] == "running"
    same = ("status", "cancel_requested_at", "output", "usage", "progress", "completed_at")
    assert {k: read[k] for k in same} == {k: answer[k] for k in same}
    assert read["progress"]["stage"] == "cancelling"
    # and it ends cancelled with exactly the output the 202 showed
    final = wait_for(
        lambda: (t := client.get(f"/v1/tasks/{tid}").json())["status"] == "cancelled" and t, "the task to end"
    )
    assert final["output"] == answer["output"] and final["usage"]["output_tokens"] == answer["usage"]["output_tokens"]
    assert final["cancel_requested_at"] == answer["cancel_requested_at"]


def test_chat_a_thread_read_right_after_a_cancel_shows_the_action_cancelled(local_api: LocalApi) -> None:
    with closing(sign_in(local_api, "erin")) as browser:
        thread_id = browser.post("/chat", json={"message": MEETING}).json()["thread_id"]
        assert browser.post("/chat/cancel", json={"thread_id": thread_id}).json()["status"] == "cancelled"
        actions = browser.get(f"/chat/threads/{thread_id}").json()["actions"]
        assert [a["status"] for a in actions] == ["cancelled"] and actions[0]["decided_at"]


def test_sessions_a_resume_right_after_a_cancel_ends_with_message_cancelled(client: httpx.Client) -> None:
    sid = client.post("/v1/sessions", json={"persistent": False}).json()["id"]
    with client.stream("POST", f"/v1/sessions/{sid}/messages", json={"message": LONG}) as r:
        rid = r.headers["X-Response-Id"]
        for ev in sse_events(r.iter_lines()):
            if ev["event"] == "message.delta":
                break  # the reader leaves once the turn writes
    cancel = client.post(f"/v1/sessions/{sid}/responses/{rid}/cancel")
    with client.stream("GET", f"/v1/sessions/{sid}/responses/{rid}/events", params={"after": 0}) as r:
        events: list[dict[str, Any]] = list(sse_events(r.iter_lines()))
    assert (cancel.status_code, cancel.json()["status"]) == (202, "cancelling")
    names = [e["event"] for e in events]
    assert names[-1] == "message.cancelled" and "message.completed" not in names
