"""The omni functions (omni_api, omni_cancel: the shared handlers, and the worker), loaded
by path and driven with the sample events in events/ — the events `invoke` uses."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.functions_harness import Aws, Context, aws, load_event  # noqa: F401


def body(resp: dict[str, Any]) -> Any:
    return json.loads(resp["body"])


def with_ids(name: str, response_id: str | None = None, thread_id: str | None = None) -> dict[str, Any]:
    """A sample event retargeted at real ids (path, rawPath and pathParameters together)."""
    raw = json.dumps(load_event(name))
    raw = raw.replace("0df65765-0f6c-4c3a-9a7e-3f2b8d1c4e5a", response_id or "0df65765-0f6c-4c3a-9a7e-3f2b8d1c4e5a")
    raw = raw.replace("21eda4e1-5b7a-4c1e-8f0d-6a9b3c2d1e0f", thread_id or "21eda4e1-5b7a-4c1e-8f0d-6a9b3c2d1e0f")
    return json.loads(raw)


def test_the_sample_events_drive_create_poll_cancel_and_history(aws: Aws) -> None:
    api, cancel, worker = aws.function("omni_api"), aws.function("omni_cancel"), aws.function("worker")
    created = api.lambda_handler(load_event("omni_api"), Context())
    assert created["statusCode"] == 201
    ids = body(created)["data"]
    polled = body(api.lambda_handler(with_ids("omni_api_get_response", ids["response_id"]), Context()))
    assert polled["data"]["status"] == "queued"
    out = cancel.lambda_handler(with_ids("omni_cancel", ids["response_id"]), Context())
    assert out["statusCode"] == 200 and body(out) == {
        "data": {"canceled": True},
        "metadata": {"request_id": "c0ffee00-0000-4000-8000-000000000305"},
    }
    records = aws.drain_queue()
    assert [json.loads(r["body"])["turn_id"] for r in records] == [ids["response_id"]]
    assert worker.lambda_handler({"Records": records}, Context()) == {"batchItemFailures": []}
    history = body(api.lambda_handler(with_ids("omni_api_messages", thread_id=ids["thread_id"]), Context()))["data"]
    assert [(m["role"], m["outcome"]) for m in history] == [("USER", "completed"), ("ASSISTANT", "canceled")]


def test_a_finished_turn_then_a_follow_up_message_through_the_functions(aws: Aws) -> None:
    api, worker = aws.function("omni_api"), aws.function("worker")
    ids = body(api.lambda_handler(load_event("omni_api"), Context()))["data"]
    worker.lambda_handler({"Records": aws.drain_queue()}, Context())
    final = body(api.lambda_handler(with_ids("omni_api_get_response", ids["response_id"]), Context()))["data"]
    assert final["status"] == "succeeded" and len(final["content"]["parts"][0]["text"].split()) == 40
    follow = api.lambda_handler(with_ids("omni_api_create_message", thread_id=ids["thread_id"]), Context())
    assert follow["statusCode"] == 201


def test_the_cancel_sample_event_for_an_unknown_response_is_the_seeds_404(aws: Aws) -> None:
    out = aws.function("omni_cancel").lambda_handler(load_event("omni_cancel"), Context())
    assert out["statusCode"] == 404
    assert body(out)["error"] == {"code": 404, "message": "Response not found"}


# ---------------------------------------------------------------------------- the turn queue and the sweeper


def _create(aws: Aws, key: str | None = None) -> dict[str, Any]:
    ev = load_event("omni_api")
    if key:
        ev["headers"]["idempotency-key"] = key
    return aws.function("omni_api").lambda_handler(ev, Context())


def test_a_turn_the_queue_refuses_is_cancelled_and_a_retry_with_its_key_starts_afresh(aws: Aws) -> None:
    from botocore.exceptions import ClientError

    api = aws.function("omni_api")

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")

    real = api.store.queue.sqs
    api.store.queue._sqs = type("RefusingSqs", (), {"send_message": staticmethod(refuse)})()
    failed = _create_with(api, "retry-me")
    api.store.queue._sqs = real
    assert failed["statusCode"] == 503 and body(failed)["error"]["code"] == 503
    ok = _create_with(api, "retry-me")  # the key was unbound: a new turn, not a replay of the dead one
    assert ok["statusCode"] == 201
    heads = [i for i in aws.store.db.ddb.scan(TableName=aws.table)["Items"] if i["sk"]["S"] == "TURN"]
    states = sorted(aws.store.turns.get(i["id"]["S"]).status.value for i in heads)  # type: ignore[union-attr]
    assert states == ["cancelled", "queued"]
    assert [json.loads(r["body"])["turn_id"] for r in aws.drain_queue()] == [body(ok)["data"]["response_id"]]


def _create_with(api: Any, key: str) -> dict[str, Any]:
    ev = load_event("omni_api")
    ev["headers"]["idempotency-key"] = key
    return api.lambda_handler(ev, Context())


def test_a_send_that_failed_after_delivery_does_not_cancel_the_claimed_turn(aws: Aws) -> None:
    from botocore.exceptions import ClientError

    api = aws.function("omni_api")
    real = api.store.queue.sqs

    class DeliveredThenFailed:
        def send_message(self, **kw: Any) -> None:
            real.send_message(**kw)
            turn_id = json.loads(kw["MessageBody"])["turn_id"]
            aws.store.turns.claim(turn_id, "worker-a", 30_000)  # a worker got it before the error came back
            raise ClientError({"Error": {"Code": "RequestTimeout", "Message": "lost reply"}}, "SendMessage")

    api.store.queue._sqs = DeliveredThenFailed()
    resp = api.lambda_handler(load_event("omni_api"), Context())
    api.store.queue._sqs = real
    assert resp["statusCode"] == 201
    head = aws.store.turns.get(body(resp)["data"]["response_id"])
    assert head is not None and head.status.value == "running" and not head.cancel_requested


def test_the_sweeper_requeues_a_turn_whose_message_was_lost_and_not_again_this_soon(aws: Aws, monkeypatch: Any) -> None:
    rid = body(_create(aws))["data"]["response_id"]
    assert len(aws.drain_queue()) == 1  # the message is consumed and lost: nobody runs the turn
    monkeypatch.setenv("TURNSTOP_SWEEP_QUEUED_AFTER_SECONDS", "0.001")
    sweeper = aws.function("sweeper")
    assert sweeper.lambda_handler(load_event("sweeper"), Context()) == {"requeued": [rid], "callbacks": []}
    # still queued (the re-sent message waits in a backlog): not re-sent again this soon
    assert sweeper.lambda_handler(load_event("sweeper"), Context()) == {"requeued": [], "callbacks": []}
    records = aws.drain_queue()
    assert [json.loads(r["body"])["turn_id"] for r in records] == [rid]
    aws.function("worker").lambda_handler({"Records": records}, Context())  # the re-sent message runs it
    assert aws.store.turns.get(rid).status.value == "completed"  # type: ignore[union-attr]
    assert sweeper.lambda_handler(load_event("sweeper"), Context()) == {"requeued": [], "callbacks": []}
