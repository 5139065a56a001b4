"""Cancel from anywhere through the functions, driven with the events in events/: the admin
bulk cancel, scope messages on the cancel queue, cancels by Idempotency-Key, deadlines in
requests, and the turn-events function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.functions_harness import Aws, Context, aws, load_event, with_principal  # noqa: F401
from tests.unit.test_sessions_functions import run_worker, start_stateless, stream_body
from turnstop.auth import create_api_key
from turnstop.core.turn import Status

ADMIN_KEY = "ts_unit_admin_key"


def body(resp: dict[str, Any]) -> Any:
    return json.loads(resp["body"])


@pytest.fixture
def cancel_queue(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = aws.sqs.create_queue(QueueName="cancels-unit")["QueueUrl"]
    monkeypatch.setenv("TURNSTOP_CANCEL_QUEUE_URL", url)
    monkeypatch.setenv("TURNSTOP_BULK_CANCEL_PAGE_SIZE", "2")
    create_api_key(aws.table, "dev", [1], key=ADMIN_KEY, store=aws.store, admin=True)
    yield url


def drain_cancels(aws: Aws, url: str) -> list[dict[str, Any]]:
    """The cancel queue's messages as the sample event's records."""
    saved, aws.queue_url = aws.queue_url, url
    try:
        drained = aws.drain_queue()
    finally:
        aws.queue_url = saved
    sample = load_event("cancel_consumer")["Records"][0]
    return [{**sample, "messageId": r["messageId"], "body": r["body"]} for r in drained]


def admin_event(scope: dict[str, Any] | None = None, *, admin: bool = True, tenant: str = "dev") -> dict[str, Any]:
    ev = load_event("admin_cancels")
    ev["requestContext"]["authorizer"]["lambda"] = {"tenant": tenant, "account_ids": "1", "key_id": "key_admin"}
    if admin:
        ev["requestContext"]["authorizer"]["lambda"]["admin"] = "true"
    if scope is not None:
        ev["body"] = json.dumps({"scope": scope, "reason": "account suspended"})
    return ev


_LLM_API: dict[str, Any] = {}


def queued_turns(aws: Aws, n: int, tenant: str = "dev", end_user: str | None = None) -> list[str]:
    """Background llm responses, queued (the worker is not run): in flight until stopped."""
    fn = _LLM_API.get(aws.table) or _LLM_API.setdefault(aws.table, aws.function("llm_api"))
    out = []
    for _ in range(n):
        ev = with_principal(load_event("llm_api"), tenant)
        if end_user is not None:
            ev["headers"]["x-on-behalf-of"] = end_user
        ev["body"] = json.dumps({"model": "turnstop:scripted", "input": "Write a 900-word essay", "background": True})
        out.append(json.loads("".join(fn.stream_handler(ev).body))["id"])
    return out


# ---------------------------------------------------------------------------- admin bulk cancel


def test_the_admin_endpoint_stops_the_tenants_turns_and_answers_the_report(aws: Aws, cancel_queue: str) -> None:
    mine, theirs = queued_turns(aws, 5), queued_turns(aws, 2, tenant="other")
    fn = aws.function("admin_cancels")
    out = fn.lambda_handler(admin_event({"tenant": "dev"}), Context())
    assert out["statusCode"] == 200, out
    report = body(out)
    assert (report["status"], report["matched"], report["cancelled"], report["already_finished"], report["failed"]) == (
        "completed",
        5,
        5,
        0,
        0,
    )
    assert report["pages"] == 3 and report["source"] == "admin" and report["reason"] == "account suspended"
    for rid in mine:
        head = aws.store.turns.head(rid)
        assert head is not None and head.status is Status.CANCELLED and head.cancel_batch == report["id"]
    for rid in theirs:
        head = aws.store.turns.head(rid)
        assert head is not None and not head.cancel_requested
    read = aws.function("admin_cancels").lambda_handler(
        {
            **admin_event(),
            "routeKey": "GET /v1/admin/cancels/{bulk_id}",
            "rawPath": out["headers"]["Location"],
            "requestContext": {
                **admin_event()["requestContext"],
                "http": {
                    **admin_event()["requestContext"]["http"],
                    "method": "GET",
                    "path": out["headers"]["Location"],
                },
            },
        },
        Context(),
    )
    assert read["statusCode"] == 200 and body(read)["cancelled"] == 5


def test_the_admin_endpoint_refuses_non_admin_keys_other_tenants_and_empty_scopes(aws: Aws, cancel_queue: str) -> None:
    turns = queued_turns(aws, 2, tenant="other")
    fn = aws.function("admin_cancels")
    denied = fn.lambda_handler(admin_event({"tenant": "dev"}, admin=False), Context())
    assert denied["statusCode"] == 403 and body(denied)["error"]["type"] == "forbidden"
    foreign = fn.lambda_handler(admin_event({"tenant": "other"}), Context())
    assert foreign["statusCode"] == 403
    assert body(foreign)["error"]["message"] == "A key may stop only its own tenant's turns"
    empty = fn.lambda_handler(admin_event({}), Context())
    assert empty["statusCode"] == 400 and "names nothing" in body(empty)["error"]["message"]
    both = fn.lambda_handler(admin_event({"session_id": "s", "thread_id": "t"}), Context())
    assert both["statusCode"] == 400
    for rid in turns:  # nothing was cancelled
        head = aws.store.turns.head(rid)
        assert head is not None and not head.cancel_requested


def test_an_admin_key_acting_for_an_end_user_stops_and_reads_only_that_end_users(aws: Aws, cancel_queue: str) -> None:
    ann, bob = queued_turns(aws, 2, end_user="ann"), queued_turns(aws, 2, end_user="bob")
    fn = aws.function("admin_cancels")
    as_ann = admin_event({"tenant": "dev"})
    as_ann["headers"]["x-on-behalf-of"] = "ann"
    out = fn.lambda_handler(as_ann, Context())
    assert out["statusCode"] == 200 and body(out)["scope"] == {"tenant": "dev", "end_user": "ann"}
    assert (body(out)["matched"], body(out)["cancelled"]) == (2, 2)
    for rid in bob:
        head = aws.store.turns.head(rid)
        assert head is not None and not head.cancel_requested
    naming_bob = admin_event({"end_user": "bob"})
    naming_bob["headers"]["x-on-behalf-of"] = "ann"
    refused = fn.lambda_handler(naming_bob, Context())
    assert refused["statusCode"] == 403 and "that end user's" in body(refused)["error"]["message"]
    location = out["headers"]["Location"]
    read = admin_event()
    read.update(routeKey="GET /v1/admin/cancels/{bulk_id}", rawPath=location, body=None)
    read["requestContext"]["http"].update(method="GET", path=location)
    read["headers"]["x-on-behalf-of"] = "bob"
    assert fn.lambda_handler(read, Context())["statusCode"] == 404  # ann's report is not bob's to read
    read["headers"]["x-on-behalf-of"] = "ann"
    assert fn.lambda_handler(read, Context())["statusCode"] == 200
    assert all(aws.store.turns.head(rid).cancel_requested for rid in ann)  # type: ignore[union-attr]


def test_an_admin_request_out_of_time_hands_the_rest_to_the_queue(
    aws: Aws, cancel_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNSTOP_BULK_CANCEL_SYNC_SECONDS", "0")
    queued_turns(aws, 3)
    out = aws.function("admin_cancels").lambda_handler(admin_event({"tenant": "dev"}), Context())
    assert out["statusCode"] == 202 and body(out)["status"] == "running" and body(out)["matched"] == 0
    consumer = aws.function("cancel_consumer")
    for _ in range(2):  # two pages of two come through the queue, the first queueing the second
        records = drain_cancels(aws, cancel_queue)
        assert len(records) == 1
        assert consumer.lambda_handler({"Records": records}, Context()) == {"batchItemFailures": []}
    assert drain_cancels(aws, cancel_queue) == []
    report = aws.store.bulk.get(body(out)["id"])
    assert report is not None and report.status == "completed" and report.counts["cancelled"] == 3


# ---------------------------------------------------------------------------- the cancel queue


def scope_record(message: dict[str, Any], message_id: str = "m-1", receives: int = 1) -> dict[str, Any]:
    sample = load_event("cancel_consumer_scope")["Records"][0]
    return {
        **sample,
        "messageId": message_id,
        "body": json.dumps(message),
        "attributes": {**sample["attributes"], "ApproximateReceiveCount": str(receives)},
    }


def test_a_scope_message_runs_page_by_page_and_a_redelivery_counts_nothing_twice(aws: Aws, cancel_queue: str) -> None:
    queued_turns(aws, 3)
    consumer = aws.function("cancel_consumer")
    first = scope_record({"scope": {"tenant": "dev"}, "reason": "billing: account suspended"})
    assert consumer.lambda_handler({"Records": [first]}, Context()) == {"batchItemFailures": []}
    assert consumer.lambda_handler(
        {"Records": [{**first, "attributes": {**first["attributes"], "ApproximateReceiveCount": "2"}}]}, Context()
    ) == {"batchItemFailures": []}
    pages = drain_cancels(aws, cancel_queue)
    assert len(pages) == 2 and pages[0]["body"] == pages[1]["body"]  # the redelivery re-sent page 2
    assert consumer.lambda_handler({"Records": pages}, Context()) == {"batchItemFailures": []}
    report = aws.store.bulk.get(f"sqs-{first['messageId']}")
    assert report is not None and report.status == "completed" and report.pages == 2
    assert report.counts == {"matched": 3, "cancelled": 3, "already_finished": 0, "failed": 0}


def test_a_message_with_a_turn_and_a_scope_or_a_scope_naming_nothing_fails(aws: Aws, cancel_queue: str) -> None:
    consumer = aws.function("cancel_consumer")
    records = [
        scope_record({"turn_id": "resp_x", "tenant": "dev", "scope": {"tenant": "dev"}}, "both"),
        scope_record({"scope": {}}, "empty"),
        scope_record({"scope": {"account_id": 1}}, "no-tenant"),
        scope_record({"scope": {"tenant": "dev"}, "created_before": "yesterday"}, "bad-time"),
        scope_record({"turn_id": "resp_x", "tenant": "dev", "scope": "session:abc"}, "single"),
    ]
    out = consumer.lambda_handler({"Records": records}, Context())
    assert out["batchItemFailures"] == [{"itemIdentifier": i} for i in ("both", "empty", "no-tenant", "bad-time")]


# ---------------------------------------------------------------------------- cancel before start


def test_a_stream_started_with_a_cancelled_key_is_born_cancelled(aws: Aws) -> None:
    out = aws.function("response_cancel").lambda_handler(load_event("response_cancel_by_key"), Context())
    assert (out["statusCode"], body(out)) == (202, {"response_id": None, "status": "cancelling"})
    _, resp = start_stateless(aws, headers={"idempotency-key": "checkout-42"})
    frames = stream_body(resp)
    assert [f["event"] for f in frames] == ["response.created", "response.cancelled"]
    rid = frames[0]["data"]["id"]
    assert run_worker(aws) == {"batchItemFailures": []}  # the worker records it; nothing ran
    head = aws.store.turns.get(rid)
    assert head is not None and head.stored_status is Status.CANCELLED and head.started_at is None
    assert aws.store.ledger.entries("dev", rid) == []
    again = aws.function("response_cancel").lambda_handler(load_event("response_cancel_by_key"), Context())
    assert (again["statusCode"], body(again)) == (200, {"response_id": rid, "status": "already_complete"})


def test_cancel_by_key_routes_need_the_key_and_answer_in_each_dialect(aws: Aws) -> None:
    ev = load_event("response_cancel_by_key")
    del ev["headers"]["idempotency-key"]
    missing = aws.function("response_cancel").lambda_handler(ev, Context())
    assert missing["statusCode"] == 400 and "Idempotency-Key is required" in body(missing)["error"]["message"]
    llm = with_principal(load_event("llm_cancel"), "dev")
    llm.update(rawPath="/api/v1/llm/responses/cancel", routeKey="POST /api/v1/llm/responses/cancel")
    llm["requestContext"]["http"]["path"] = "/api/v1/llm/responses/cancel"
    llm.pop("pathParameters", None)
    llm["headers"]["idempotency-key"] = "bg-7"
    out = aws.function("llm_cancel").lambda_handler(llm, Context())
    assert out["statusCode"] == 202 and body(out)["status"] == "cancelled" and body(out)["id"] is None
    create = with_principal(load_event("llm_api"), "dev")
    create["headers"]["idempotency-key"] = "bg-7"
    create["body"] = json.dumps({"model": "turnstop:scripted", "input": "Write a 90-word note", "background": True})
    created = json.loads("".join(aws.function("llm_api").stream_handler(create).body))
    assert created["status"] == "cancelled"
    again = aws.function("llm_cancel").lambda_handler(llm, Context())
    assert again["statusCode"] == 200 and body(again)["id"] == created["id"] and body(again)["status"] == "cancelled"


def test_the_tasks_cancel_by_key_before_and_after_the_create(aws: Aws) -> None:
    cancel = aws.function("tasks_cancel")
    ev = load_event("tasks_cancel")
    ev.update(rawPath="/v1/tasks/cancel", routeKey="POST /v1/tasks/cancel")
    ev["requestContext"]["http"]["path"] = "/v1/tasks/cancel"
    ev.pop("pathParameters", None)
    ev["headers"]["idempotency-key"] = "report-9"
    ev["body"] = json.dumps({"reason": "changed my mind"})
    before = cancel.lambda_handler(ev, Context())
    assert before["statusCode"] == 202 and body(before)["task_id"] is None and body(before)["status"] == "cancelled"
    create = load_event("tasks_api")
    create["headers"]["idempotency-key"] = "report-9"
    created = aws.function("tasks_api").lambda_handler(create, Context())
    task = body(created)
    assert created["statusCode"] == 202 and task["status"] == "cancelled"
    assert task["error"]["message"] == "changed my mind"
    replay = aws.function("tasks_api").lambda_handler(create, Context())
    assert replay["body"] == created["body"]  # the create's first answer, exactly
    after = cancel.lambda_handler(ev, Context())
    assert after["statusCode"] == 200 and body(after)["task_id"] == task["task_id"]


# ---------------------------------------------------------------------------- deadlines in requests


@pytest.mark.parametrize("value", ["0", "-1", "901", "abc", "1e3", ""])
def test_a_max_duration_out_of_range_is_a_400_and_starts_nothing(aws: Aws, value: str) -> None:
    _, resp = start_stateless(aws, headers={"turnstop-max-duration": value})
    assert resp.status_code == 400
    assert "Turnstop-Max-Duration" in json.loads("".join(resp.body))["error"]["message"]


def test_a_max_duration_in_a_body_sets_the_turns_deadline(aws: Aws) -> None:
    ev = load_event("tasks_api")
    ev["body"] = json.dumps({**json.loads(ev["body"]), "max_duration_seconds": 2.5})
    task = body(aws.function("tasks_api").lambda_handler(ev, Context()))
    head = aws.store.turns.head(task["task_id"])
    assert head is not None and head.deadline_at == head.created_at + 2500
    ev["headers"]["turnstop-max-duration"] = "3"
    ev["headers"]["idempotency-key"] = "another"
    assert aws.function("tasks_api").lambda_handler(ev, Context())["statusCode"] == 400  # they disagree


# ---------------------------------------------------------------------------- events out


def test_the_turn_events_function_appends_each_terminal_transition(
    aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNSTOP_EVENTS_FILE", str(tmp_path / "events.jsonl"))
    fn = aws.function("turn_events")
    sample = load_event("turn_events")
    unrelated = json.loads(json.dumps(sample["Records"][0]))
    unrelated["dynamodb"]["NewImage"]["status"] = {"S": "running"}  # a step: no event
    assert fn.lambda_handler({"Records": [unrelated, *sample["Records"]]}, Context()) == {"batchItemFailures": []}
    (line,) = (tmp_path / "events.jsonl").read_text().splitlines()
    event = json.loads(line)
    assert (event["source"], event["detail-type"]) == ("turnstop", "turn.cancelled")
    d = event["detail"]
    assert (d["turn_id"], d["tenant"], d["dialect"], d["source"], d["reason"], d["actor"]) == (
        "resp_example0000000000000000",
        "dev",
        "sessions",
        "api",
        "user pressed stop",
        "key_dev",
    )
    assert (d["cancel_latency_ms"], d["billed"], d["usage"]["output_tokens"]) == (180, False, 38)


def test_a_failed_publication_is_retried_from_its_record(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    fn = aws.function("turn_events")
    sample = load_event("turn_events")["Records"][0]
    second = json.loads(json.dumps(sample))
    second["dynamodb"]["SequenceNumber"] = "111100000000000000000002"
    calls: list[int] = []

    def put(events: list[Any]) -> list[int]:
        calls.append(len(events))
        return [1]  # the second entry was refused

    monkeypatch.setattr(fn.sink, "put", put)
    out = fn.lambda_handler({"Records": [sample, second]}, Context())
    assert out == {"batchItemFailures": [{"itemIdentifier": "111100000000000000000002"}]} and calls == [2]
