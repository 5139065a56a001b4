"""The sessions dialect's functions, driven with the events in events/ (as `invoke` uses them)."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.functions_harness import DEV_KEY, Aws, Context, aws, load_event, with_principal  # noqa: F401
from turnstop.core.turn import Status


def body(resp: dict[str, Any]) -> Any:
    return json.loads(resp["body"])


def stream_body(resp: Any) -> list[dict[str, Any]]:
    text = "".join(resp.body)
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if not line.startswith(":"))
        if fields:
            out.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
    return out


def start_stateless(aws: Aws, prompt: str = "Write a 6-word note", headers: dict[str, str] | None = None) -> Any:
    stream = aws.function("sessions_stream")
    ev = load_event("sessions_stream")
    ev["body"] = json.dumps({"input": prompt})
    ev["headers"].update(headers or {})
    return stream, stream.stream_handler(ev)


def run_worker(aws: Aws) -> dict[str, Any]:
    worker = aws.function("worker")
    return worker.lambda_handler({"Records": aws.drain_queue()}, Context())


# ---------------------------------------------------------------------------- authorizer


def test_the_authorizer_resolves_a_known_key_and_passes_unknown_ones_as_anonymous(aws: Aws) -> None:
    fn = aws.function("authorizer")
    ev = load_event("authorizer")
    ev["headers"]["authorization"] = f"Bearer {DEV_KEY}"
    out = fn.lambda_handler(ev, Context())
    assert out == {
        "isAuthorized": True,
        "context": {"tenant": "dev", "account_ids": "1", "key_id": out["context"]["key_id"]},
    }
    ev["headers"]["authorization"] = "Bearer nope"
    assert fn.lambda_handler(ev, Context())["context"] == {"anonymous": "true"}


# ---------------------------------------------------------------------------- sessions api


def test_creating_a_session_returns_its_id(aws: Aws) -> None:
    resp = aws.function("sessions_api").lambda_handler(load_event("sessions_api"), Context())
    assert resp["statusCode"] == 201
    assert body(resp)["id"].startswith("sess_") and body(resp)["persistent"] is True


def test_bad_session_bodies_get_a_clear_error_and_create_nothing(aws: Aws) -> None:
    fn = aws.function("sessions_api")
    cases = [
        ("{not json", 400, "invalid_request"),
        ('{"persistent": "yes"}', 400, "invalid_request"),
        ("[1,2]", 400, "invalid_request"),
        (json.dumps({"persistent": True, "pad": "x" * 300_000}), 413, "payload_too_large"),
    ]
    for raw, status, code in cases:
        ev = load_event("sessions_api")
        ev["body"] = raw
        resp = fn.lambda_handler(ev, Context())
        assert resp["statusCode"] == status, raw[:20]
        assert body(resp)["error"]["type"] == code
        assert body(resp)["error"]["request_id"]
    scan = aws.store.db.ddb.scan(TableName=aws.table)["Items"]
    assert not [i for i in scan if i["pk"]["S"].startswith("SESSION#")]


def test_a_missing_or_bad_key_is_401_in_the_dialects_shape(aws: Aws) -> None:
    resp = aws.function("sessions_api").lambda_handler(with_principal(load_event("sessions_api"), None), Context())
    assert resp["statusCode"] == 401
    assert body(resp)["error"]["type"] == "unauthorized"


def test_deleting_a_session_cancels_its_turn_and_later_calls_answer_404(aws: Aws) -> None:
    api = aws.function("sessions_api")
    sid = body(api.lambda_handler(load_event("sessions_api"), Context()))["id"]
    stream = aws.function("sessions_stream")
    ev = load_event("sessions_stream")
    ev["rawPath"] = f"/v1/sessions/{sid}/messages"
    ev["requestContext"]["http"]["path"] = ev["rawPath"]
    ev["routeKey"] = "POST /v1/sessions/{id}/messages"
    ev["body"] = json.dumps({"message": "Write a 50-word note"})
    started = stream.stream_handler(ev)
    rid = started.headers["X-Response-Id"]
    delete = load_event("sessions_api_delete")
    delete["rawPath"] = f"/v1/sessions/{sid}"
    delete["pathParameters"] = {"id": sid}
    resp = api.lambda_handler(delete, Context())
    assert resp["statusCode"] == 200 and body(resp)["cancelled_response_id"] == rid
    assert aws.store.turns.get(rid).status is Status.CANCELLED  # type: ignore[union-attr]
    assert api.lambda_handler(delete, Context())["statusCode"] == 404
    again = stream.stream_handler(ev)
    assert again.status_code == 404


# ---------------------------------------------------------------------------- streaming + cancel


def test_a_stateless_turn_streams_created_deltas_and_completed(aws: Aws) -> None:
    _, resp = start_stateless(aws)
    rid = resp.headers["X-Response-Id"]
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    run_worker(aws)
    events = stream_body(resp)
    assert events[0]["event"] == "response.created" and events[0]["data"]["id"] == rid
    assert [e["event"] for e in events[1:-1]] == ["response.delta"] * 6
    assert events[-1]["event"] == "response.completed"
    assert [e["id"] for e in events] == list(range(1, 9))


def test_cancel_answers_202_then_200_then_404_after_grace(aws: Aws) -> None:
    _, resp = start_stateless(aws, "Write a 40-word note")
    rid = resp.headers["X-Response-Id"]
    cancel_fn = aws.function("response_cancel")
    ev = load_event("response_cancel")
    ev["rawPath"] = f"/v1/responses/{rid}/cancel"
    ev["pathParameters"] = {"rid": rid}
    first = cancel_fn.lambda_handler(ev, Context())
    assert (first["statusCode"], body(first)) == (202, {"response_id": rid, "status": "cancelling"})
    run_worker(aws)
    events = stream_body(resp)
    assert events[-1]["event"] == "response.cancelled"
    second = cancel_fn.lambda_handler(ev, Context())
    assert (second["statusCode"], body(second)) == (200, {"response_id": rid, "status": "already_complete"})


def test_cancel_of_unknown_malformed_or_foreign_ids_is_404_and_changes_nothing(aws: Aws) -> None:
    _, resp = start_stateless(aws)
    rid = resp.headers["X-Response-Id"]
    cancel_fn = aws.function("response_cancel")
    for target, tenant in [("resp_unknown123", "dev"), ("not-an-id", "dev"), (rid, "other")]:
        ev = with_principal(load_event("response_cancel"), tenant)
        ev["rawPath"] = f"/v1/responses/{target}/cancel"
        ev["pathParameters"] = {"rid": target}
        out = cancel_fn.lambda_handler(ev, Context())
        assert out["statusCode"] == 404 and body(out)["error"]["type"] == "not_found"
    # a stateless rid through a session's cancel path is not that session's
    session_cancel = aws.function("session_cancel")
    ev = load_event("session_cancel")
    ev["pathParameters"] = {"id": "sess_example0000000000000000", "rid": rid}
    assert session_cancel.lambda_handler(ev, Context())["statusCode"] == 404
    head = aws.store.turns.get(rid)
    assert head is not None and head.status is Status.QUEUED and not head.cancel_requested


def test_an_idempotency_key_replays_the_same_turn_and_rejects_a_different_body(aws: Aws) -> None:
    _, first = start_stateless(aws, headers={"idempotency-key": "abc"})
    _, again = start_stateless(aws, headers={"idempotency-key": "abc"})
    assert again.headers["X-Response-Id"] == first.headers["X-Response-Id"]
    _, other = start_stateless(aws, "Write a 7-word note", headers={"idempotency-key": "abc"})
    assert other.status_code == 422
    assert json.loads("".join(other.body))["error"]["type"] == "idempotency_key_reused"
    assert len(aws.drain_queue()) == 1  # one turn queued, not three


def test_the_worker_settles_a_message_for_an_unknown_turn(aws: Aws) -> None:
    out = aws.function("worker").lambda_handler(load_event("worker"), Context())
    assert out == {"batchItemFailures": []}


def test_the_ledger_shows_one_debit_for_a_completed_turn(aws: Aws) -> None:
    _, resp = start_stateless(aws)
    rid = resp.headers["X-Response-Id"]
    run_worker(aws)
    stream_body(resp)
    ev = load_event("sessions_api_ledger")
    ev["queryStringParameters"] = {"response_id": rid}
    out = body(aws.function("sessions_api").lambda_handler(ev, Context()))
    assert sorted(e["kind"] for e in out["data"]) == ["debit", "usage"]


def test_a_turn_started_for_an_end_user_is_hidden_from_other_end_users(aws: Aws) -> None:
    _, resp = start_stateless(aws, headers={"x-on-behalf-of": "alice"})
    rid = resp.headers["X-Response-Id"]
    cancel_fn = aws.function("response_cancel")

    def cancel_as(end_user: str | None) -> dict[str, Any]:
        ev = load_event("response_cancel")
        ev["rawPath"] = f"/v1/responses/{rid}/cancel"
        ev["pathParameters"] = {"rid": rid}
        if end_user:
            ev["headers"]["x-on-behalf-of"] = end_user
        return cancel_fn.lambda_handler(ev, Context())

    assert cancel_as("bob")["statusCode"] == 404
    assert not aws.store.turns.get(rid).cancel_requested  # type: ignore[union-attr]
    assert cancel_as("alice")["statusCode"] == 202
    assert cancel_as(None)["statusCode"] == 200  # the tenant's service-level call sees it (already cancelled)


def test_a_turn_the_queue_refuses_is_cancelled_and_frees_its_session(aws: Aws) -> None:
    api = aws.function("sessions_api")
    sid = body(api.lambda_handler(load_event("sessions_api"), Context()))["id"]
    stream = aws.function("sessions_stream")
    ev = load_event("sessions_stream")
    ev["rawPath"] = f"/v1/sessions/{sid}/messages"
    ev["requestContext"]["http"]["path"] = ev["rawPath"]
    ev["body"] = json.dumps({"message": "Write a 5-word note"})
    ev["headers"]["idempotency-key"] = "retry-me"
    from botocore.exceptions import ClientError

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")

    real = stream.store.queue.sqs
    stream.store.queue._sqs = type("RefusingSqs", (), {"send_message": staticmethod(refuse)})()
    failed = stream.stream_handler(ev)
    assert failed.status_code == 503 and json.loads("".join(failed.body))["error"]["type"] == "unavailable"
    stream.store.queue._sqs = real
    # the client retries with the same key: the session is free and the key unbound, so a
    # new turn starts instead of a replay of the one that never ran
    ok = stream.stream_handler(ev)
    assert ok.status_code == 200
    scan = aws.store.db.ddb.scan(TableName=aws.table)["Items"]
    heads = {i["id"]["S"]: aws.store.turns.get(i["id"]["S"]) for i in scan if i["sk"]["S"] == "TURN"}
    assert sorted(h.status.value for h in heads.values() if h) == ["cancelled", "queued"]
    assert heads[ok.headers["X-Response-Id"]].status is Status.QUEUED  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- cancels from a queue


def test_a_cancel_message_stops_a_turn_like_the_http_endpoint(aws: Aws) -> None:
    _, resp = start_stateless(aws, "Write a 40-word note")
    rid = resp.headers["X-Response-Id"]
    fn = aws.function("cancel_consumer")
    ev = load_event("cancel_consumer")
    ev["Records"][0]["body"] = json.dumps({"turn_id": rid, "tenant": "dev", "reason": "user closed the tab"})
    assert fn.lambda_handler(ev, Context()) == {"batchItemFailures": []}
    head = aws.store.turns.get(rid)
    assert head is not None and head.status is Status.CANCELLED
    assert (head.cancel_source, head.cancel_reason) == ("queue", "user closed the tab")


def test_bad_or_foreign_cancel_messages_change_nothing_and_only_malformed_ones_fail(aws: Aws) -> None:
    _, resp = start_stateless(aws)
    rid = resp.headers["X-Response-Id"]
    fn = aws.function("cancel_consumer")
    template = load_event("cancel_consumer")["Records"][0]
    bodies = {
        "foreign": json.dumps({"turn_id": rid, "tenant": "other"}),  # settled: not_found
        "unknown": json.dumps({"turn_id": "resp_nope", "tenant": "dev"}),  # settled: not_found
        "not-json": "{nope",
        "wrong-type": json.dumps({"turn_id": 7, "tenant": "dev"}),
        "extra-field": json.dumps({"turn_id": rid, "tenant": "dev", "force": True}),
    }
    records = [{**template, "messageId": name, "body": body} for name, body in bodies.items()]
    out = fn.lambda_handler({"Records": records}, Context())
    assert sorted(f["itemIdentifier"] for f in out["batchItemFailures"]) == ["extra-field", "not-json", "wrong-type"]
    head = aws.store.turns.get(rid)
    assert head is not None and head.status is Status.QUEUED and not head.cancel_requested


# ---------------------------------------------------------------------------- sweeper


def test_the_sweeper_requeues_a_turn_whose_message_was_lost(aws: Aws, monkeypatch: Any) -> None:
    _, resp = start_stateless(aws)
    rid = resp.headers["X-Response-Id"]
    assert len(aws.drain_queue()) == 1  # the message is consumed and lost: nobody runs the turn
    monkeypatch.setenv("TURNSTOP_SWEEP_QUEUED_AFTER_SECONDS", "0.001")
    sweeper = aws.function("sweeper")
    assert sweeper.lambda_handler(load_event("sweeper"), Context()) == {"requeued": [rid], "callbacks": []}
    run_worker(aws)  # the re-sent message runs it
    assert aws.store.turns.get(rid).status is Status.COMPLETED  # type: ignore[union-attr]
    assert sweeper.lambda_handler(load_event("sweeper"), Context()) == {"requeued": [], "callbacks": []}


def test_the_sweeper_does_not_resend_a_backlogged_turn_every_run(aws: Aws, monkeypatch: Any) -> None:
    _, resp = start_stateless(aws)
    rid = resp.headers["X-Response-Id"]
    aws.drain_queue()
    monkeypatch.setenv("TURNSTOP_SWEEP_QUEUED_AFTER_SECONDS", "0.001")
    sweeper = aws.function("sweeper")
    assert sweeper.lambda_handler(load_event("sweeper"), Context()) == {"requeued": [rid], "callbacks": []}
    # still queued (the re-sent message waits in a backlog): not re-sent again this soon
    assert sweeper.lambda_handler(load_event("sweeper"), Context()) == {"requeued": [], "callbacks": []}
    assert len(aws.drain_queue()) == 1


def test_a_send_that_failed_after_delivery_does_not_cancel_the_claimed_turn(aws: Aws) -> None:
    from botocore.exceptions import ClientError

    stream = aws.function("sessions_stream")
    real = stream.store.queue.sqs

    class DeliveredThenFailed:
        def send_message(self, **kw: Any) -> None:
            real.send_message(**kw)
            turn_id = json.loads(kw["MessageBody"])["turn_id"]
            aws.store.turns.claim(turn_id, "worker-a", 30_000)  # a worker got it before the error came back
            raise ClientError({"Error": {"Code": "RequestTimeout", "Message": "lost reply"}}, "SendMessage")

    stream.store.queue._sqs = DeliveredThenFailed()
    resp = stream.stream_handler(load_event("sessions_stream"))
    stream.store.queue._sqs = real
    assert resp.status_code == 200
    head = aws.store.turns.get(resp.headers["X-Response-Id"])
    assert head is not None and head.status is Status.RUNNING and not head.cancel_requested


def test_the_resume_event_replays_a_finished_turn_after_its_cursor(aws: Aws) -> None:
    _, resp = start_stateless(aws, "Write a 4-word note")
    rid = resp.headers["X-Response-Id"]
    run_worker(aws)
    stream_body(resp)
    ev = load_event("sessions_stream_resume")
    ev["rawPath"] = f"/v1/responses/{rid}/events"
    ev["requestContext"]["http"]["path"] = ev["rawPath"]
    ev["headers"]["last-event-id"] = "3"
    resumed = aws.function("sessions_stream").stream_handler(ev)
    assert resumed.status_code == 200 and resumed.headers["X-Response-Id"] == rid
    assert [e["id"] for e in stream_body(resumed)] == [4, 5, 6]  # deltas 3-4, then completed
    unknown = aws.function("sessions_stream").stream_handler(load_event("sessions_stream_resume"))
    assert unknown.status_code == 404


def test_every_cancel_answer_is_counted_for_the_5xx_alarms(aws: Aws, capsys: Any) -> None:
    out = aws.function("response_cancel").lambda_handler(load_event("response_cancel"), Context())
    assert out["statusCode"] == 404
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    metrics = {m["Name"] for e in emitted for d in e["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert "CancelStatus404" in metrics
    assert all(e.get("service") for e in emitted)  # the alarms' dimension
