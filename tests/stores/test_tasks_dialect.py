"""The tasks dialect through its resolvers (the routes its functions serve), run on moto (unit)
and on DynamoDB Local (integration). Workers and callback deliveries run in-process, by hand,
so every interleaving of cancel, completion and delivery is chosen by the test."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from tests.cases.fixtures import Env, only_on_dynamodb_local
from tests.cases.tasks import (
    LEASE_MS,
    LONG,
    TENANT,
    D,
    Reply,
    TasksApi,
    assert_task_shape,
)
from tests.cases.turns import HookModel, eventually
from tests.conftest import CapacityMeter
from turnstop.core.events import Event
from turnstop.dialects.registry import all_renderers
from turnstop.runtime.runner import TurnRunner


@pytest.fixture
def tasks(env: Env) -> TasksApi:
    return TasksApi(env)


# ============================================================================ create and read


def test_a_created_task_is_queued_charged_in_its_own_transaction_and_queued_once(tasks: TasksApi) -> None:
    tasks.env.counter.reset()
    reply = tasks.create("Write a 50-word note", body=None)
    assert tasks.env.counter.writes == ["TransactWriteItems"]  # turn, first event and charge together
    assert reply.status == 202 and reply.headers["location"] == reply.json["links"]["self"]
    assert "idempotent-replayed" not in reply.headers
    obj = reply.json
    assert_task_shape(obj)
    assert (obj["status"], obj["model"], obj["resolved_model"]) == ("queued", "auto", "turnstop:scripted")
    assert obj["progress"] == {"percent": 0, "stage": "queued", "message": "Waiting for a worker"}
    # 4 input tokens at 0.002 + 50 expected output tokens at 0.004 credits; 0.01 USD per credit
    assert obj["billing"]["charged_credits"] == "0.208" and obj["billing"]["charged_credits_usd_reference"] == "0.00208"
    assert obj["billing"]["refunded_credits"] == "0" and obj["callback"] is None and obj["error"] is None
    assert tasks.ledger(obj["task_id"])["charge"]["credits"] == "0.208"
    assert tasks.sqs.on("turns") == [(obj["task_id"], 0)]


def test_the_cap_max_output_tokens_bounds_the_charge_and_cuts_the_output(tasks: TasksApi) -> None:
    body = {
        "capability": "text.generate",
        "model": "turnstop:scripted-mini",
        "input": {"prompt": LONG, "max_output_tokens": 10},
        "metadata": {"team": "billing"},
    }
    obj = tasks.create(body=body).json
    tid = obj["task_id"]
    assert obj["input"] == {"prompt": LONG, "max_output_tokens": 10} and obj["metadata"] == {"team": "billing"}
    assert obj["billing"]["charged_credits"] == str(D("0.0005") * 7 + D("0.001") * 10)
    assert tasks.run(tid) == "incomplete"
    final = tasks.get(tid).json
    assert_task_shape(final)
    assert final["status"] == "succeeded" and len(final["output"]["text"].split()) == 10
    assert [w["code"] for w in final["warnings"]] == ["max_output_tokens_reached"]
    assert final["billing"]["refunded_credits"] == "0"


def test_a_running_task_shows_progress_and_the_text_so_far(tasks: TasksApi) -> None:
    tid = tasks.new("Write a 40-word note")
    seen: list[dict[str, Any]] = []

    def once_published(words: int) -> Callable[[], None]:  # the task as polled once the keeper published them
        def peek() -> None:
            seen.append(
                eventually(
                    lambda: (o := tasks.get(tid).json)["usage"]["output_tokens"] == words and o, f"{words} words"
                )
            )

        return peek

    model = HookModel(40, {10: once_published(10), 30: once_published(30)})
    assert tasks.run(tid, model) == "completed"
    early, late = seen
    for obj in seen:
        assert_task_shape(obj)
        assert obj["status"] == "running" and obj["started_at"] and obj["completed_at"] is None
    assert (
        early["progress"]["stage"] == "generating"
        and 0 < early["progress"]["percent"] < late["progress"]["percent"] < 100
    )
    assert early["output"]["text"] == "".join(f"w{i} " for i in range(10))
    assert late["output"]["text"].startswith(early["output"]["text"]) and late["usage"]["output_tokens"] == 30
    assert early["billing"]["refunded_credits"] == "0" and early["usage"]["credits"] == "0"


def test_a_succeeded_task_refunds_what_it_did_not_earn_and_bills_its_lines(tasks: TasksApi) -> None:
    tid = tasks.new("Write a 30-word note")  # charged for 30 words
    assert tasks.run(tid, HookModel(12)) == "completed"  # a model that stops early earns less
    obj = tasks.get(tid).json
    assert_task_shape(obj)
    assert obj["status"] == "succeeded" and obj["progress"]["percent"] == 100 and obj["completed_at"]
    charged, refunded = D(obj["billing"]["charged_credits"]), D(obj["billing"]["refunded_credits"])
    earned = D("0.002") * 4 + D("0.004") * 12  # "Write a 30-word note" is 4 tokens
    assert obj["usage"]["credits"] == str(earned) and charged - refunded == earned
    assert [(line["meter"], line["quantity"], line["billed_amount_credits"]) for line in obj["usage"]["lines"]] == [
        ("input_tokens", "4", "0.008"),
        ("output_tokens", "12", "0.048"),
    ]
    ledger = tasks.ledger(tid)
    assert set(ledger) == {"charge", "refund"} and D(ledger["refund"]["credits"]) == refunded
    assert tasks.run(tid) == "already_final" and set(tasks.ledger(tid)) == {"charge", "refund"}


def test_a_failed_task_is_refunded_in_full_and_says_why(tasks: TasksApi) -> None:
    tid = tasks.new()
    assert tasks.run(tid, HookModel(20, fail_at=5)) == "failed"
    obj = tasks.get(tid).json
    assert_task_shape(obj)
    assert obj["status"] == "failed" and obj["error"]["code"] == "model_error" and obj["error"]["retryable"] is True
    assert obj["billing"]["refunded_credits"] == obj["billing"]["charged_credits"]
    assert obj["usage"]["output_tokens"] == 5 and obj["usage"]["credits"] == "0"
    assert all(line["billed_amount_credits"] == "0" for line in obj["usage"]["lines"])


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"capability": "image.generate", "model": "auto", "input": {"prompt": "x"}}, "unsupported_capability"),
        ({"capability": "text.generate", "model": "gpt-9", "input": {"prompt": "x"}}, "unsupported_model"),
    ],
)
def test_an_unknown_capability_or_model_is_a_400_and_writes_nothing(tasks: TasksApi, body: Any, code: str) -> None:
    before = tasks.snapshot()
    reply = tasks.create(body=body)
    assert reply.status == 400 and reply.error["code"] == code and reply.error["retryable"] is False
    assert tasks.snapshot() == before and tasks.sqs.sent == []


# A table: one bad body per line (name, body, a word of the error), left as written by the formatter.
BAD_BODIES: list[tuple[str, Any, str]] = [
    ("malformed JSON", "{not json", "Malformed JSON"),
    ("not an object", "[1]", "must be a JSON object"),
    ("empty", "", "required"),
    ("missing input", {"capability": "text.generate", "model": "auto"}, "input"),
    ("prompt not a string", {"capability": "text.generate", "model": "auto", "input": {"prompt": 5}}, "input.prompt"),
    ("blank prompt", {"capability": "text.generate", "model": "auto", "input": {"prompt": "  "}}, "input.prompt"),
    (
        "unknown top field",
        {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "callbak": {}},
        "callbak",
    ),
    (
        "unknown input field",
        {"capability": "text.generate", "model": "auto", "input": {"prompt": "x", "temp": 1}},
        "input.temp",
    ),
    (
        "metadata value not a string",
        {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "metadata": {"k": 1}},
        "metadata",
    ),
    (
        "too many metadata keys",
        {
            "capability": "text.generate",
            "model": "auto",
            "input": {"prompt": "x"},
            "metadata": {f"k{i}": "v" for i in range(17)},
        },
        "metadata",
    ),
    (
        "zero max_output_tokens",
        {"capability": "text.generate", "model": "auto", "input": {"prompt": "x", "max_output_tokens": 0}},
        "max_output_tokens",
    ),
    (
        "callback not https",
        {
            "capability": "text.generate",
            "model": "auto",
            "input": {"prompt": "x"},
            "callback": {"url": "http://hooks.example.com/x"},
        },
        "https",
    ),
    (
        "callback with credentials",
        {
            "capability": "text.generate",
            "model": "auto",
            "input": {"prompt": "x"},
            "callback": {"url": "https://u:p@hooks.example.com/x"},
        },
        "credentials",
    ),
    (
        "callback to a private host",
        {
            "capability": "text.generate",
            "model": "auto",
            "input": {"prompt": "x"},
            "callback": {"url": "https://internal.example.com/x"},
        },
        "private",
    ),
    (
        "callback partly private",
        {
            "capability": "text.generate",
            "model": "auto",
            "input": {"prompt": "x"},
            "callback": {"url": "https://mixed.example.com/x"},
        },
        "private",
    ),
    (
        "callback to metadata IP",
        {
            "capability": "text.generate",
            "model": "auto",
            "input": {"prompt": "x"},
            "callback": {"url": "https://169.254.169.254/latest"},
        },
        "private",
    ),
    (
        "callback to localhost (knob off)",
        {
            "capability": "text.generate",
            "model": "auto",
            "input": {"prompt": "x"},
            "callback": {"url": "https://localhost/x"},
        },
        "loopback",
    ),
    (
        "callback host unknown",
        {
            "capability": "text.generate",
            "model": "auto",
            "input": {"prompt": "x"},
            "callback": {"url": "https://nowhere.invalid/x"},
        },
        "resolve",
    ),
    (
        "callback not a URL",
        {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "callback": {"url": "hooks"}},
        "https",
    ),
]


@pytest.mark.parametrize(("name", "body", "hint"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_create_bodies_are_a_clear_400_in_the_seeds_error_shape_and_write_nothing(
    tasks: TasksApi, name: str, body: Any, hint: str
) -> None:
    before = tasks.snapshot()
    reply = tasks.call("POST", "/v1/tasks", raw=body) if isinstance(body, str) else tasks.create(body=body)
    assert reply.status == 400, reply.text
    assert hint in reply.error["message"] and reply.error["retryable"] is False
    assert tasks.snapshot() == before and tasks.sqs.sent == []


def test_an_oversized_body_is_a_413_and_writes_nothing(env: Env) -> None:
    tasks = TasksApi(env, {"max_body_bytes": 1024})
    before = tasks.snapshot()
    reply = tasks.create("x " * 1000)
    assert reply.status == 413 and reply.error["code"] == "payload_too_large"
    tid = tasks.new()
    assert tasks.cancel(tid, raw="{" + " " * 2000 + "}").status == 413
    assert tasks.store.turns.get(tid).cancel_requested_at is None  # type: ignore[union-attr]
    assert len(tasks.snapshot()) > len(before)


def test_a_loopback_callback_is_accepted_only_when_the_knob_is_on(env: Env) -> None:
    tasks = TasksApi(env, {"callback_allow_loopback": True})
    for url in ("http://127.0.0.1:8123/hook", "http://localhost:8123/hook", "https://[::1]/hook"):
        tid = tasks.new(callback={"url": url})
        assert tasks.get(tid).json["callback"]["url"] == url
    assert (
        tasks.create(
            body={
                "capability": "text.generate",
                "model": "auto",
                "input": {"prompt": "x"},
                "callback": {"url": "http://10.0.0.7/x"},
            }
        ).status
        == 400
    )


def test_request_ids_are_echoed_generated_or_refused_when_malformed(tasks: TasksApi) -> None:
    tid = tasks.new()
    assert tasks.get(tid, headers={"x-request-id": "client-123"}).headers["x-request-id"] == "client-123"
    generated = tasks.get(tid).headers["x-request-id"]
    assert generated and generated != "client-123"
    for bad in ("bad\x01id", "x" * 201, "caf\u00e9"):
        for reply in (tasks.get(tid, headers={"x-request-id": bad}), tasks.cancel(tid, headers={"x-request-id": bad})):
            assert reply.status == 400 and "X-Request-Id" in reply.error["message"]
            assert reply.headers["x-request-id"] != bad
    assert tasks.get(tid).json["status"] == "queued"  # the refused cancel changed nothing
    missing = tasks.get("task_unknown0000", headers={"x-request-id": "r-404"})
    assert missing.status == 404 and missing.headers["x-request-id"] == "r-404" and missing.error["code"] == "not_found"


def test_a_missing_key_is_401_and_changes_nothing(tasks: TasksApi) -> None:
    tid = tasks.new()
    for reply in (
        tasks.create(tenant=None),
        tasks.get(tid, tenant=None),
        tasks.list_as(None),
        tasks.cancel(tid, tenant=None),
    ):
        assert reply.status == 401 and reply.error["code"] == "unauthorized"
    assert tasks.get(tid).json["status"] == "queued" and len(tasks.sqs.on("turns")) == 1


def test_unknown_malformed_and_other_tenants_tasks_are_the_same_404(tasks: TasksApi) -> None:
    tid = tasks.new()
    answers = [
        tasks.get("task_doesnotexist0000"),
        tasks.get("not-a-task"),
        tasks.get(tid, tenant="other"),
        tasks.cancel("task_doesnotexist0000"),
        tasks.cancel("not-a-task"),
        tasks.cancel(tid, tenant="other"),
    ]
    assert {(a.status, a.error["code"], a.error["message"]) for a in answers} == {(404, "not_found", "No such task")}
    assert tasks.get(tid).json["status"] == "queued"


def test_a_task_past_its_retention_is_gone(env: Env) -> None:
    tasks = TasksApi(env, {"tasks_retention_seconds": 60})
    tid = tasks.new("Write a 3-word note")
    tasks.run(tid)
    env.clock.advance(seconds=59)
    assert tasks.get(tid).status == 200 and [t["task_id"] for t in tasks.list().json["data"]] == [tid]
    env.clock.advance(seconds=2)
    assert tasks.get(tid).status == 404 and tasks.cancel(tid).status == 404 and tasks.list().json["data"] == []


# ============================================================================ cancel


def test_cancelling_a_queued_task_cancels_it_at_once_and_refunds_everything(tasks: TasksApi) -> None:
    tid = tasks.new(LONG)
    tasks.env.counter.reset()
    reply = tasks.cancel(tid, "changed my mind")
    assert tasks.env.counter.writes == ["UpdateItem"]
    assert reply.status == 200
    obj = reply.json
    assert_task_shape(obj)
    assert obj["status"] == "cancelled" and obj["progress"]["stage"] == "cancelled" and obj["started_at"] is None
    assert obj["error"] == {"code": "cancelled", "message": "changed my mind", "retryable": False}
    assert obj["completed_at"] == obj["cancel_requested_at"]
    assert obj["billing"]["refunded_credits"] == obj["billing"]["charged_credits"] != "0"
    # no work ever starts: the worker that gets the message records the cancel and the refund
    assert tasks.run(tid) == "cancelled"
    ledger = tasks.ledger(tid)
    assert set(ledger) == {"charge", "refund"} and ledger["refund"]["credits"] == ledger["charge"]["credits"]
    assert tasks.get(tid).json == obj


def test_cancelling_a_running_task_answers_202_and_it_ends_cancelled_with_the_reason(tasks: TasksApi) -> None:
    tid = tasks.new(LONG)
    answers: list[Reply] = []

    def cancel_once_ten_words_are_out() -> None:
        eventually(lambda: tasks.get(tid).json["usage"]["output_tokens"] == 10, "ten words published")
        answers.append(tasks.cancel(tid, "too slow"))

    model = HookModel(50, {10: cancel_once_ten_words_are_out})
    assert tasks.run(tid, model) == "cancelled"
    (first,) = answers
    assert first.status == 202
    assert first.json["status"] == "running" and first.json["cancel_requested_at"] and first.json["error"] is None
    assert first.json["progress"]["stage"] == "cancelling" and first.json["warnings"] == []
    assert first.json["output"]["text"] == "".join(f"w{i} " for i in range(10))
    final = tasks.get(tid).json
    assert_task_shape(final)
    assert final["status"] == "cancelled" and final["error"]["message"] == "too slow"
    # it ends with exactly the output the 202 showed, whatever the model produced after it
    assert final["output"]["text"] == first.json["output"]["text"] and final["usage"]["output_tokens"] == 10
    assert final["billing"]["refunded_credits"] == final["billing"]["charged_credits"]
    assert final["usage"]["credits"] == "0"
    assert all(line["billed_amount_credits"] == "0" for line in final["usage"]["lines"])
    assert set(tasks.ledger(tid)) == {"charge", "refund"}


def test_a_second_cancel_while_the_first_propagates_is_202_with_a_warning(tasks: TasksApi) -> None:
    tid = tasks.new(LONG)
    tasks.store.turns.claim(tid, "worker-a", LEASE_MS)  # it runs, and its worker has not yet seen a flag
    first, second = tasks.cancel(tid, "too slow"), tasks.cancel(tid, "again")
    assert first.status == second.status == 202 and first.json["warnings"] == []
    assert [(w["code"], w["field"]) for w in second.json["warnings"]] == [
        ("cancel_already_requested", "cancel_requested_at")
    ]
    assert second.json["cancel_requested_at"] == first.json["cancel_requested_at"]


def test_a_cancel_landing_after_the_last_word_still_wins(tasks: TasksApi) -> None:
    tid = tasks.new("Write a 5-word note")
    answers: list[Reply] = []
    assert tasks.run(tid, HookModel(5, {5: lambda: answers.append(tasks.cancel(tid))})) == "cancelled"
    assert answers[0].status == 202 and tasks.get(tid).json["status"] == "cancelled"
    assert tasks.ledger(tid)["refund"]["credits"] == tasks.ledger(tid)["charge"]["credits"]


@pytest.mark.parametrize("ending", ["succeeded", "failed", "cancelled"])
def test_cancelling_a_finished_task_returns_its_final_state_unchanged_with_a_warning(
    tasks: TasksApi, ending: str
) -> None:
    tid = tasks.new("Write a 6-word note")
    if ending == "cancelled":
        tasks.cancel(tid, "first")
    tasks.run(tid, HookModel(6, fail_at=2 if ending == "failed" else None))
    before = tasks.get(tid).json
    assert before["status"] == ending
    snapshot = tasks.snapshot()
    reply = tasks.cancel(tid, "second")
    assert reply.status == 200 and tasks.snapshot() == snapshot
    obj = reply.json
    assert [(w["code"], w["field"]) for w in obj["warnings"]] == [("already_terminal", "status")]
    assert {**obj, "warnings": []} == before


@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        ('{"reason": 5}', "reason"),
        ('{"reason": "' + "x" * 1001 + '"}', "reason"),
        ('{"reson": "x"}', "reson"),
        ("[", "Malformed"),
    ],
)
def test_a_bad_cancel_body_is_a_400_and_cancels_nothing(tasks: TasksApi, raw: str, hint: str) -> None:
    tid = tasks.new()
    reply = tasks.cancel(tid, raw=raw)
    assert reply.status == 400 and hint in reply.error["message"]
    assert tasks.get(tid).json["status"] == "queued"


def test_a_reason_of_1000_characters_is_kept_whole(tasks: TasksApi) -> None:
    tid = tasks.new()
    assert tasks.cancel(tid, "r" * 1000).json["error"]["message"] == "r" * 1000


# ============================================================================ idempotency


def test_a_create_replays_its_first_answer_exactly_and_is_charged_once(tasks: TasksApi) -> None:
    body = {"capability": "text.generate", "model": "auto", "input": {"prompt": "Write a 6-word note"}}
    first = tasks.create(body=body, headers={"Idempotency-Key": "k-1"})
    tid = first.json["task_id"]
    tasks.run(tid)  # the task moves on; a replay still answers what the create answered
    again = tasks.create(body=dict(reversed(list(body.items()))), headers={"Idempotency-Key": "k-1"})
    assert (again.status, again.text) == (first.status, first.text)
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert [t for t, _ in tasks.sqs.on("turns")] == [tid] and set(tasks.ledger(tid)) == {"charge", "refund"}
    other = tasks.create(body={**body, "metadata": {"x": "y"}}, headers={"Idempotency-Key": "k-1"})
    assert other.status == 422 and other.error["code"] == "idempotency_key_reused"
    # keys are per tenant: another tenant's same key is its own task
    theirs = tasks.create(body=body, headers={"Idempotency-Key": "k-1"}, tenant="other")
    assert theirs.status == 202 and theirs.json["task_id"] != tid


def test_a_cancel_replays_its_first_answer_exactly_and_rejects_another_body(tasks: TasksApi) -> None:
    tid = tasks.new(LONG)
    replies: list[Reply] = []
    key = {"Idempotency-Key": "c-1"}
    hook = {5: lambda: replies.append(tasks.cancel(tid, "stop", headers=key))}
    assert tasks.run(tid, HookModel(20, hook)) == "cancelled"
    first = replies[0]
    assert first.status == 202 and first.json["status"] == "running"
    again = tasks.cancel(tid, "stop", headers=key)  # the task has ended since: the answer is the first one
    assert (again.status, again.text) == (202, first.text) and again.headers["idempotent-replayed"] == "true"
    assert tasks.cancel(tid, "other reason", headers=key).status == 422
    assert tasks.cancel(tid, "stop", headers={"Idempotency-Key": "c-2"}).status == 200  # a new key: the final state
    # a key first used for a create is not a cancel's
    created = tasks.create(headers={"Idempotency-Key": "k-9"}).json["task_id"]
    assert tasks.cancel(created, headers={"Idempotency-Key": "k-9"}).status == 422
    assert tasks.get(created).json["status"] == "queued"


def test_a_failed_cancel_gives_its_key_back(tasks: TasksApi) -> None:
    assert tasks.cancel("task_doesnotexist0000", headers={"Idempotency-Key": "c-404"}).status == 404
    tid = tasks.new()
    path_reuse = tasks.cancel("task_doesnotexist0000", headers={"Idempotency-Key": "c-404"})
    assert path_reuse.status == 404 and "idempotent-replayed" not in path_reuse.headers
    assert tasks.cancel(tid, headers={"Idempotency-Key": "c-new"}).status == 200


def test_a_cancel_whose_key_is_held_by_a_request_in_flight_is_a_retryable_409(tasks: TasksApi) -> None:
    from turnstop.idempotency.requests import idempotency_binding

    tid = tasks.new()
    path = f"/v1/tasks/{tid}/cancel"
    ev = {
        "headers": {"idempotency-key": "c-busy"},
        "rawPath": path,
        "body": None,
        "requestContext": {"http": {"method": "POST"}},
    }
    binding = idempotency_binding(ev, TENANT, None)
    assert binding is not None and tasks.store.answers.bind(binding, 60_000) is None  # another request holds it
    reply = tasks.cancel(tid, headers={"Idempotency-Key": "c-busy"})
    assert reply.status == 409 and reply.error["retryable"] is True
    assert tasks.get(tid).json["status"] == "queued"
    tasks.env.clock.advance(seconds=61)  # that request died: its binding lapses and the retry runs
    assert tasks.cancel(tid, headers={"Idempotency-Key": "c-busy"}).status == 200


# ============================================================================ list


def test_the_list_is_newest_first_filtered_by_status_paged_and_per_tenant(tasks: TasksApi) -> None:
    ids = []
    for _ in range(5):
        ids.append(tasks.new("Write a 3-word note"))
        tasks.env.clock.advance(ms=10)
    tasks.run(ids[0])
    tasks.cancel(ids[1], "no")  # cancelled while queued
    tasks.run(ids[2], HookModel(3, fail_at=1))
    tasks.call(
        "POST",
        "/v1/tasks",
        body={"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}},
        tenant="other",
    )
    page = tasks.list().json
    assert set(page) == {"object", "data", "has_more", "next_cursor"} and page["object"] == "list"
    assert [t["task_id"] for t in page["data"]] == ids[::-1] and page["has_more"] is False
    for t in page["data"]:
        assert_task_shape(t)
        assert t["output"] == {}
    by_status = {
        s: [t["task_id"] for t in tasks.list(status=s).json["data"]]
        for s in ("queued", "running", "succeeded", "failed", "cancelled")
    }
    assert by_status == {
        "queued": [ids[4], ids[3]],
        "running": [],
        "succeeded": [ids[0]],
        "failed": [ids[2]],
        "cancelled": [ids[1]],
    }
    first = tasks.list(limit="2").json
    assert [t["task_id"] for t in first["data"]] == [ids[4], ids[3]] and first["has_more"] is True
    second = tasks.list(limit="2", cursor=first["next_cursor"]).json
    third = tasks.list(limit="2", cursor=second["next_cursor"]).json
    assert [t["task_id"] for t in second["data"] + third["data"]] == [ids[2], ids[1], ids[0]]
    assert third["has_more"] is False and third["next_cursor"] is None


def test_a_filtered_list_that_reads_many_others_answers_a_short_page_and_a_cursor(tasks: TasksApi) -> None:
    done = tasks.new("Write a 2-word note")
    tasks.run(done)
    for _ in range(24):  # newer, still queued: more than ten index pages of two
        tasks.env.clock.advance(ms=1)
        tasks.new("Write a 2-word note")
    page = tasks.list(status="succeeded", limit="1").json
    assert page["data"] == [] and page["has_more"] is True
    found = []
    while page["has_more"]:
        page = tasks.list(status="succeeded", limit="1", cursor=page["next_cursor"]).json
        found += [t["task_id"] for t in page["data"]]
    assert found == [done]


@pytest.mark.parametrize(
    "query",
    [{"status": "done"}, {"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "garbage!"}, {"cursor": "YWJj"}],
)
def test_a_bad_list_query_is_a_400(tasks: TasksApi, query: dict[str, str]) -> None:
    reply = tasks.list(**query)
    assert reply.status == 400 and reply.error["code"] == "invalid_request"


# ---------------------------------------------------------------- on DynamoDB Local only


@only_on_dynamodb_local
def test_cancels_racing_completion_charge_and_refund_exactly_once_and_agree_with_the_end(env: Env) -> None:
    """Four cancel threads released early in the run, as the last word is committed (racing the
    completion), or as the completion is written: whoever wins, one charge and one refund, and
    a cancel answered 202 always ends cancelled."""
    tasks = TasksApi(env)
    outcomes = set()
    for release in ("early", "last_word", "finish", "last_word", "finish"):
        tid = tasks.new("Write a 12-word note")
        go = threading.Event()
        answers: list[Reply] = []

        def canceller(task_id: str = tid, go: threading.Event = go, answers: list[Reply] = answers) -> None:
            go.wait()
            answers.append(tasks.cancel(task_id, "race"))

        threads = [threading.Thread(target=canceller) for _ in range(4)]
        for t in threads:
            t.start()

        def release_then_wait_for_an_answer(go: threading.Event = go, answers: list[Reply] = answers) -> None:
            go.set()  # early in the run: the model waits until a cancel has answered
            eventually(lambda: answers, "a cancel's answer")

        hooks: dict[int, Callable[[], object]] = {}
        if release == "early":
            hooks[2] = release_then_wait_for_an_answer
        elif release == "last_word":
            hooks[12] = go.set
        result = _runner(tasks, HookModel(12, hooks), go).handle(tid)
        for t in threads:
            t.join(timeout=60)
        final = tasks.get(tid).json
        ledger = tasks.ledger(tid)
        assert set(ledger) == {"charge", "refund"}, ledger
        charged, refunded = Decimal(ledger["charge"]["credits"]), Decimal(ledger["refund"]["credits"])
        if any(a.status == 202 for a in answers):  # a cancel won: it ends cancelled, refunded in full
            assert final["status"] == "cancelled" and result == "cancelled" and refunded == charged
        else:  # completion won: every cancel saw it finished and changed nothing
            assert final["status"] == "succeeded" and result == "completed"
            assert charged - refunded == Decimal(final["usage"]["credits"]) > 0
            assert {a.json["warnings"][0]["code"] for a in answers} == {"already_terminal"}
        assert sum(a.status == 202 and not a.json["warnings"] for a in answers) <= 1  # one cancel took effect
        assert Decimal(final["billing"]["refunded_credits"]) == refunded
        assert tasks.run(tid) == "already_final" and tasks.ledger(tid) == ledger
        outcomes.add(final["status"])
    assert outcomes == {"cancelled", "succeeded"}


def _runner(tasks: TasksApi, model: HookModel, finished: threading.Event) -> TurnRunner:
    """A worker running ``model``; it sets ``finished`` once it has written the end."""
    return TurnRunner(
        tasks.store,
        lambda t: model,
        renderers=all_renderers(),
        lease_ms=30_000,
        owner="w",
        on_finished=lambda turn, end: finished.set(),
    )


@only_on_dynamodb_local
def test_ten_creates_with_one_key_at_once_make_one_task_and_one_charge(env: Env) -> None:
    tasks = TasksApi(env)
    body = {"capability": "text.generate", "model": "auto", "input": {"prompt": "Write a 9-word note"}}
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda _: tasks.create(body=body, headers={"Idempotency-Key": "burst"}), range(10)))
    assert {r.status for r in replies} == {202} and len({r.text for r in replies}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in replies) == 1
    tid = replies[0].json["task_id"]
    assert [t for t, _ in tasks.sqs.on("turns")] == [tid]
    charges = [e for e in tasks.store.ledger.entries(TENANT) if e["kind"] == "charge"]
    assert [e["turn_id"] for e in charges] == [tid]
    assert [t["task_id"] for t in tasks.list().json["data"]] == [tid]


@only_on_dynamodb_local
def test_ten_cancels_with_one_key_at_once_get_one_answer(env: Env) -> None:
    tasks = TasksApi(env)
    tid = tasks.new()
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda _: tasks.cancel(tid, "once", headers={"Idempotency-Key": "stop"}), range(10)))
    assert {(r.status, r.text) for r in replies} == {(200, replies[0].text)}
    assert replies[0].json["status"] == "cancelled"
    assert sum("idempotent-replayed" not in r.headers for r in replies) == 1


@only_on_dynamodb_local
def test_a_task_step_commit_writes_no_index_copy(env: Env) -> None:
    """Task heads are in gsi3 (the list), gsi2 (in flight) and gsi4 (the live index of bulk
    cancels) from their creation; a step's commit changes no index's projection, so only
    creation, claim, cancel and finish write index copies (gsi4: creation, and the cancel that
    takes it out; its finish then has nothing left there)."""
    tasks = TasksApi(env)
    meter = CapacityMeter(env.client)
    try:
        tid = tasks.new("Write a 5-word note")
        created = meter.index_writes()
        meter.reset()
        head = tasks.store.turns.claim(tid, "worker-a", 30_000)
        claimed = meter.index_writes()
        meter.reset()
        for i in range(5):
            seq = tasks.store.turns.publish(
                tid,
                "worker-a",
                [Event(head.seq + 1, "task.output.delta", {"delta": f"w{i} "})],
                head.seq,
                head.usage.__class__(head.usage.input_tokens, i + 1),
                30_000,
            )
            head = head.replace(seq=seq)
        commits = list(meter.calls)
        meter.reset()
        cancelled = tasks.cancel(tid, "enough")
        cancel_units = meter.index_writes()
        meter.reset()
        env.clock.advance(seconds=31)  # the worker is gone: the redelivered message finishes it
        assert tasks.run(tid, owner="worker-b") == "cancelled"
        finished_units = meter.index_writes()
    finally:
        meter.close()
    assert cancelled.status == 202
    assert set(created) == {"gsi2", "gsi3", "gsi4"} and set(claimed) == {"gsi2", "gsi3"}
    assert [op for op, _ in commits] == ["PutItem", "UpdateItem"] * 5
    assert all(set(units) == {"table"} for _, units in commits), commits
    assert set(cancel_units) == {"gsi3", "gsi4"}  # the list shows it cancelled-to-be; no longer stoppable
    assert set(finished_units) == {"gsi2", "gsi3"}
