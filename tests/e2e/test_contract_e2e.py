"""Contract details read from real answers over HTTP, each against the seed or the served
document: tasks' warnings, chat's cancel errors and rate headers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LocalApi, wait_for
from tests.e2e.test_chat_e2e import MEETING, sign_in

RATE = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.fixture
def client(local_api: LocalApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_api.url, headers={"Authorization": f"Bearer {local_api.key}"}, timeout=60) as c:
        yield c


def documented_examples(client: httpx.Client, path: str, method: str, status: int) -> list[dict[str, Any]]:
    op = client.get("/openapi.json").json()["paths"][path][method]
    examples = op["responses"][str(status)]["content"]["application/json"].get("examples") or {}
    return [e["value"] for e in examples.values()]


def test_tasks_warnings_carry_a_string_field_as_the_seeds_schema_does(client: httpx.Client) -> None:
    body = {"capability": "text.generate", "model": "auto", "input": {"prompt": "Write a 5000-word essay"}}
    tid = client.post("/v1/tasks", json=body).json()["task_id"]
    wait_for(lambda: client.get(f"/v1/tasks/{tid}").json()["status"] == "running", "the task to run")
    assert client.post(f"/v1/tasks/{tid}/cancel").status_code == 202
    second = client.post(f"/v1/tasks/{tid}/cancel").json()  # its cancel is still propagating
    wait_for(lambda: client.get(f"/v1/tasks/{tid}").json()["status"] == "cancelled", "the task to end")
    late = client.post(f"/v1/tasks/{tid}/cancel").json()
    capped = {
        "capability": "text.generate",
        "model": "auto",
        "input": {"prompt": "Write a 9-word note", "max_output_tokens": 3},
    }
    cid = client.post("/v1/tasks", json=capped).json()["task_id"]
    done = wait_for(lambda: (t := client.get(f"/v1/tasks/{cid}").json())["status"] == "succeeded" and t, "cap")
    warnings = [w for answer in (second, late, done) for w in answer["warnings"]]
    assert {(w["code"], w["field"]) for w in warnings} >= {
        ("already_terminal", "status"),
        ("max_output_tokens_reached", "input.max_output_tokens"),
    }
    assert all(
        set(w) == {"code", "message", "field"} and all(isinstance(v, str) for v in w.values()) for w in warnings
    ), warnings


def test_chat_cancel_409s_are_the_codes_its_document_shows(local_api: LocalApi, client: httpx.Client) -> None:
    documented = {e["error"] for e in documented_examples(client, "/chat/cancel", "post", 409)}
    confirm_documented = {e["error"] for e in documented_examples(client, "/chat/confirm", "post", 409)}
    with closing(sign_in(local_api, "frank")) as browser:
        thread_id = browser.post("/chat", json={"message": MEETING}).json()["thread_id"]
        assert browser.post("/chat/confirm", json={"thread_id": thread_id}).status_code == 200
        late = browser.post("/chat/cancel", json={"thread_id": thread_id})
        nothing = browser.post("/chat/confirm", json={"thread_id": thread_id})
    assert late.status_code == 409 and late.json()["error"] in documented == {"nothing_to_cancel"}
    assert nothing.status_code == 409 and nothing.json()["error"] in confirm_documented == {"nothing_to_confirm"}


def test_every_counted_chat_cancel_answer_carries_the_rate_headers_errors_included(local_api: LocalApi) -> None:
    with closing(sign_in(local_api, "grace")) as browser:
        thread_id = browser.post("/chat", json={"message": MEETING}).json()["thread_id"]
        answers = {
            200: browser.post("/chat/cancel", json={"thread_id": thread_id}),
            400: browser.post("/chat/cancel", json={"thread_id": 7}),
            404: browser.post("/chat/cancel", json={"thread_id": "thread_nosuchthread"}),
        }
        done = browser.post("/chat", json={"message": "Write a 3-word note"}).json()["thread_id"]
        answers[409] = browser.post("/chat/cancel", json={"thread_id": done})
        while answers.get(429) is None:
            r = browser.post("/chat/cancel", json={"thread_id": thread_id})
            if r.status_code == 429:
                answers[429] = r
            assert int(r.headers["X-RateLimit-Remaining"]) <= 60
    with httpx.Client(base_url=local_api.url, timeout=60) as stranger:
        unsigned = stranger.post("/chat/cancel", json={"thread_id": thread_id})
    for status, answer in answers.items():
        assert answer.status_code == status, (status, answer.text)
        assert all(answer.headers.get(h) for h in RATE), (status, dict(answer.headers))
        assert answer.headers["X-RateLimit-Limit"] == "60"
    assert answers[429].headers["X-RateLimit-Remaining"] == "0" and answers[429].headers["Retry-After"]
    assert unsigned.status_code == 401 and not any(h in unsigned.headers for h in RATE)
