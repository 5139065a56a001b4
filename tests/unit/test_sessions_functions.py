"""The sessions dialect's functions, driven with the events in events/ (as `invoke` uses them)."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.functions_harness import DEV_KEY, Aws, Context, aws, load_event, with_principal  # noqa: F401
from turnstop.core.signin import WebSession, secret_hash
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
    """Run the worker on what the turn queue holds (streaming turns run in their request)."""
    records = aws.drain_queue()
    if not records:
        return {"batchItemFailures": []}
    return aws.function("worker").lambda_handler({"Records": records}, Context())


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


def test_the_authorizer_answers_the_streaming_rest_api_with_a_policy_allowing_the_method(aws: Aws) -> None:
    """The SSE routes go through a REST API (response streaming), whose REQUEST authorizer must
    answer an IAM policy: it allows the method either way, with the same context."""
    fn = aws.function("authorizer")
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/stream/POST/v1/responses"
    ev: dict[str, Any] = {"type": "REQUEST", "methodArn": arn, "headers": {"Authorization": f"Bearer {DEV_KEY}"}}
    out = fn.lambda_handler(ev, Context())
    allow = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": arn}
    assert out["policyDocument"] == {"Version": "2012-10-17", "Statement": [allow]}
    assert out["context"] == {"tenant": "dev", "account_ids": "1", "key_id": out["principalId"]}
    ev["headers"]["Authorization"] = "Bearer nope"
    anonymous = fn.lambda_handler(ev, Context())
    assert (anonymous["principalId"], anonymous["context"]) == ("anonymous", {"anonymous": "true"})
    assert anonymous["policyDocument"]["Statement"] == [allow]


def test_the_authorizer_reads_the_bearer_key_only_never_a_session_cookie(aws: Aws) -> None:
    """A live browser session is no credential to it: the cookie routes opt out of the
    authorizer and resolve their cookie themselves (template.yaml, docs/chat.md)."""
    value = "a-live-session-cookie-value-0123456789"
    now = aws.store.now()
    aws.store.signins.create_session(
        WebSession(secret_hash(value), "dev", "alice", "alice", now, now + 3_600_000, now + 3_600_000, now)
    )
    fn = aws.function("authorizer")
    ev = load_event("authorizer")
    del ev["headers"]["authorization"]
    ev["cookies"] = [f"session_id={value}"]
    ev["headers"]["cookie"] = f"session_id={value}"
    assert fn.lambda_handler(ev, Context()) == {"isAuthorized": True, "context": {"anonymous": "true"}}


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
    ev["body"] = json.dumps({"message": "Write a 500-word note"})
    started = stream.stream_handler(ev)
    rid = started.headers["X-Response-Id"]
    delete = load_event("sessions_api_delete")
    delete["rawPath"] = f"/v1/sessions/{sid}"
    delete["pathParameters"] = {"id": sid}
    resp = api.lambda_handler(delete, Context())
    assert resp["statusCode"] == 200 and body(resp)["cancelled_response_id"] == rid
    assert stream_body(started)[-1]["event"] == "message.cancelled"
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
    assert head is not None and not head.cancel_requested


def test_an_idempotency_key_replays_the_same_turn_and_rejects_a_different_body(aws: Aws) -> None:
    _, first = start_stateless(aws, headers={"idempotency-key": "abc"})
    _, again = start_stateless(aws, headers={"idempotency-key": "abc"})
    assert again.headers["X-Response-Id"] == first.headers["X-Response-Id"]
    _, other = start_stateless(aws, "Write a 7-word note", headers={"idempotency-key": "abc"})
    assert other.status_code == 422
    assert json.loads("".join(other.body))["error"]["type"] == "idempotency_key_reused"
    heads = [i for i in aws.store.db.ddb.scan(TableName=aws.table)["Items"] if i["sk"]["S"] == "TURN"]
    assert len(heads) == 1  # one turn, not three
    assert [e["event"] for e in stream_body(again)][-1] == "response.completed"  # the replay follows it


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
    _, resp = start_stateless(aws, "Write a 500-word note", headers={"x-on-behalf-of": "alice"})
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
    assert stream_body(resp)[-1]["event"] == "response.cancelled"
    assert cancel_as(None)["statusCode"] == 200  # the tenant's service-level call sees it (already cancelled)


# ---------------------------------------------------------------------------- cancels from a queue


def test_a_cancel_message_stops_a_turn_like_the_http_endpoint(aws: Aws) -> None:
    _, resp = start_stateless(aws, "Write a 500-word note")
    rid = resp.headers["X-Response-Id"]
    fn = aws.function("cancel_consumer")
    ev = load_event("cancel_consumer")
    ev["Records"][0]["body"] = json.dumps({"turn_id": rid, "tenant": "dev", "reason": "user closed the tab"})
    assert fn.lambda_handler(ev, Context()) == {"batchItemFailures": []}
    assert stream_body(resp)[-1]["event"] == "response.cancelled"
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
    assert head is not None and not head.cancel_requested


# ---------------------------------------------------------------------------- sweeper


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


# ---------------------------------------------------------------------------- end users and the session slot


def _session(aws: Aws, end_user: str | None = None) -> str:
    ev = load_event("sessions_api")
    if end_user:
        ev["headers"]["x-on-behalf-of"] = end_user
    return str(body(aws.function("sessions_api").lambda_handler(ev, Context()))["id"])


def _send(aws: Aws, sid: str, message: str = "Write a 50-word note", end_user: str | None = None) -> Any:
    ev = load_event("sessions_stream")
    ev["rawPath"] = f"/v1/sessions/{sid}/messages"
    ev["requestContext"]["http"]["path"] = ev["rawPath"]
    ev["body"] = json.dumps({"message": message})
    if end_user:
        ev["headers"]["x-on-behalf-of"] = end_user
    return aws.function("sessions_stream").stream_handler(ev)


def _cancel_in_session(aws: Aws, sid: str, rid: str) -> dict[str, Any]:
    ev = load_event("session_cancel")
    ev["rawPath"] = f"/v1/sessions/{sid}/responses/{rid}/cancel"
    ev["pathParameters"] = {"id": sid, "rid": rid}
    return aws.function("session_cancel").lambda_handler(ev, Context())


def test_the_next_message_is_accepted_right_after_a_202_and_one_uncancelled_turn_at_most(aws: Aws) -> None:
    sid = _session(aws)
    first = _send(aws, sid, "Write a 500-word note")  # it runs in its request
    rid = first.headers["X-Response-Id"]
    assert _send(aws, sid).status_code == 409  # one uncancelled turn at a time
    assert _cancel_in_session(aws, sid, rid)["statusCode"] == 202
    second = _send(aws, sid, "Write a 5-word note")  # at once: the cancelled turn no longer blocks it
    assert second.status_code == 200 and second.headers["X-Response-Id"] != rid
    session = aws.store.sessions.get(sid)
    assert session is not None and session.active_turn == second.headers["X-Response-Id"]
    assert stream_body(first)[-1]["event"] == "message.cancelled"
    assert stream_body(second)[-1]["event"] == "message.completed"
    # the cancelled turn's end did not free the slot the new turn held; the new turn's did
    assert aws.store.sessions.get(sid).active_turn is None  # type: ignore[union-attr]


def test_a_session_belongs_to_the_end_user_who_created_it(aws: Aws) -> None:
    sid = _session(aws, "alice")
    rid = _send(aws, sid, end_user="alice").headers["X-Response-Id"]
    assert _send(aws, sid, end_user="bob").status_code == 404
    delete = load_event("sessions_api_delete")
    delete["rawPath"] = f"/v1/sessions/{sid}"
    delete["pathParameters"] = {"id": sid}
    delete["headers"]["x-on-behalf-of"] = "bob"
    api = aws.function("sessions_api")
    assert api.lambda_handler(delete, Context())["statusCode"] == 404
    head = aws.store.turns.get(rid)
    assert head is not None and not head.cancel_requested  # bob's delete changed nothing
    delete["headers"]["x-on-behalf-of"] = "alice"
    assert api.lambda_handler(delete, Context())["statusCode"] == 200


def test_the_ledger_is_scoped_to_the_end_user_like_every_read(aws: Aws) -> None:
    _, resp = start_stateless(aws, headers={"x-on-behalf-of": "alice"})
    rid = resp.headers["X-Response-Id"]
    stream_body(resp)
    api = aws.function("sessions_api")

    def ledger(end_user: str | None, response_id: str | None = rid) -> dict[str, Any]:
        ev = load_event("sessions_api_ledger")
        ev["queryStringParameters"] = {"response_id": response_id} if response_id else None
        if end_user:
            ev["headers"]["x-on-behalf-of"] = end_user
        return api.lambda_handler(ev, Context())

    assert body(ledger("bob"))["data"] == [] and body(ledger("bob", None))["data"] == []
    assert sorted(e["kind"] for e in body(ledger("alice"))["data"]) == ["debit", "usage"]
    assert sorted(e["kind"] for e in body(ledger(None))["data"]) == ["debit", "usage"]
    too_long = ledger(None, "msg_" + "a" * 5000)
    assert too_long["statusCode"] == 400 and body(too_long)["error"]["type"] == "invalid_request"


def _resume(aws: Aws, rid: str, last_event_id: str) -> Any:
    ev = load_event("sessions_stream_resume")
    ev["rawPath"] = f"/v1/responses/{rid}/events"
    ev["requestContext"]["http"]["path"] = ev["rawPath"]
    ev["headers"]["last-event-id"] = last_event_id
    return aws.function("sessions_stream").stream_handler(ev)


def test_a_reconnect_with_the_last_live_event_id_continues_after_it(aws: Aws) -> None:
    _, live = start_stateless(aws, "Write a 300-word note")
    rid = live.headers["X-Response-Id"]
    frames = iter(live.body)
    seen = 0
    for frame in frames:  # the live reader gets events before they are durable
        seen = int(frame.split("\n")[0][4:])
        if seen >= 60:
            break
    resumed = _resume(aws, rid, str(seen))  # waits for the store to catch up with that cursor
    assert resumed.status_code == 200
    events = stream_body(resumed)
    assert events[0]["id"] == seen + 1 and events[-1]["event"] == "response.completed"
    list(frames)


def test_a_cursor_past_the_end_is_400_on_a_running_turn_too_and_cursors_are_plain_numbers(aws: Aws) -> None:
    _, live = start_stateless(aws, "Write a 2000-word note")
    rid = live.headers["X-Response-Id"]
    beyond = _resume(aws, rid, "100000")  # never handed out: a clear 400, not a stream with no end
    assert beyond.status_code == 400 and json.loads("".join(beyond.body))["error"]["type"] == "invalid_request"
    for junk in ("+2", "1_0", " 3", "-1", "9" * 20, "x"):
        bad = _resume(aws, rid, junk)
        assert bad.status_code == 400, junk
    _cancel_stateless(aws, rid)
    assert stream_body(live)[-1]["event"] == "response.cancelled"


def _cancel_stateless(aws: Aws, rid: str) -> dict[str, Any]:
    ev = load_event("response_cancel")
    ev["rawPath"] = f"/v1/responses/{rid}/cancel"
    ev["pathParameters"] = {"rid": rid}
    return aws.function("response_cancel").lambda_handler(ev, Context())
