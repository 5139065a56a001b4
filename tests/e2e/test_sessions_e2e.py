"""The sessions dialect end to end: the local runtime over real HTTP, worker on the queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LocalApi, sse_events, wait_for

# the flows `make run` serves, on DynamoDB Local and on moto's server alike
pytestmark = pytest.mark.each_store


@pytest.fixture
def client(local_api: LocalApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_api.url, headers={"Authorization": f"Bearer {local_api.key}"}, timeout=60) as c:
        yield c


def test_the_seeds_python_example_cancel_mid_stream_ends_with_message_cancelled(client: httpx.Client) -> None:
    # Given a persistent session
    sid = client.post("/v1/sessions", json={"persistent": True}).json()["id"]
    rid_ready = threading.Event()
    holder: dict[str, Any] = {}

    def reader() -> None:
        with client.stream(
            "POST", f"/v1/sessions/{sid}/messages", json={"message": "Write a 5000-word essay on cryptography"}
        ) as r:
            holder["rid"] = r.headers["X-Response-Id"]
            rid_ready.set()
            holder["events"] = list(sse_events(r.iter_lines()))

    t = threading.Thread(target=reader)
    t.start()
    assert rid_ready.wait(timeout=30)
    rid = holder["rid"]
    # When the client cancels with the id taken from the header
    r = client.post(f"/v1/sessions/{sid}/responses/{rid}/cancel")
    t.join(timeout=60)
    # Then the cancel is accepted and the open stream ends with message.cancelled
    assert (r.status_code, r.json()) == (202, {"response_id": rid, "status": "cancelling"})
    events = holder["events"]
    assert events[0]["event"] == "message.created" and events[0]["data"]["id"] == rid
    assert events[-1]["event"] == "message.cancelled"
    assert sum(e["event"] == "message.delta" for e in events) < 5000
    assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
    # and calling cancel again is an idempotent 200 already_complete
    again = client.post(f"/v1/sessions/{sid}/responses/{rid}/cancel")
    assert (again.status_code, again.json()) == (200, {"response_id": rid, "status": "already_complete"})
    # and nothing was billed for the partial turn: no usage record, no debit (the seed); the
    # usage at stop rides on the terminal event for the client
    assert client.get("/v1/ledger", params={"response_id": rid}).json()["data"] == []
    stopped = events[-1]["data"]
    assert stopped["billed"] is False and stopped["usage"]["input_tokens"] == 6
    assert stopped["usage"]["output_tokens"] == sum(e["event"] == "message.delta" for e in events)


def test_after_the_grace_window_cancel_and_resume_answer_404(client: httpx.Client, local_api: LocalApi) -> None:
    with client.stream("POST", "/v1/responses", json={"input": "Write a 3-word note"}) as r:
        rid = r.headers["X-Response-Id"]
        events = list(sse_events(r.iter_lines()))
    assert events[-1]["event"] == "response.completed"
    assert client.post(f"/v1/responses/{rid}/cancel").status_code == 200
    wait_for(
        lambda: client.post(f"/v1/responses/{rid}/cancel").status_code == 404,
        "grace expiry",
        timeout=local_api.grace_seconds + 30,
    )
    assert client.get(f"/v1/responses/{rid}/events").status_code == 404
    assert client.post(f"/v1/responses/{rid}/cancel").json()["error"]["type"] == "not_found"


def test_a_reader_that_reconnects_after_a_cancel_sees_the_rest_and_message_cancelled(client: httpx.Client) -> None:
    sid = client.post("/v1/sessions", json={"persistent": False}).json()["id"]
    with client.stream("POST", f"/v1/sessions/{sid}/messages", json={"message": "Write a 5000-word essay"}) as r:
        rid = r.headers["X-Response-Id"]
        seen = []
        for ev in sse_events(r.iter_lines()):
            seen.append(ev)
            if len(seen) == 4:
                break  # the client disconnects
    last_id = seen[-1]["id"]
    assert client.post(f"/v1/sessions/{sid}/responses/{rid}/cancel").status_code == 202
    with client.stream(
        "GET", f"/v1/sessions/{sid}/responses/{rid}/events", headers={"Last-Event-ID": str(last_id)}
    ) as r:
        assert r.status_code == 200
        rest = list(sse_events(r.iter_lines()))
    assert int(rest[0]["id"]) == int(last_id) + 1
    assert rest[-1]["event"] == "message.cancelled"
    # ?after= works the same as Last-Event-ID, from the very start
    with client.stream("GET", f"/v1/sessions/{sid}/responses/{rid}/events", params={"after": 0}) as r:
        full = list(sse_events(r.iter_lines()))
    assert full[0]["event"] == "message.created" and full[-1] == rest[-1]
    # a cursor past the end of a finished turn is a clear 400, not an empty stream
    beyond = client.get(
        f"/v1/sessions/{sid}/responses/{rid}/events", headers={"Last-Event-ID": str(int(rest[-1]["id"]) + 5)}
    )
    assert beyond.status_code == 400 and beyond.json()["error"]["type"] == "invalid_request"


def test_a_session_runs_one_turn_at_a_time_and_the_next_message_works_after_a_cancel(client: httpx.Client) -> None:
    sid = client.post("/v1/sessions", json={"persistent": True}).json()["id"]
    with client.stream("POST", f"/v1/sessions/{sid}/messages", json={"message": "Write a 5000-word essay"}) as r:
        rid = r.headers["X-Response-Id"]
        busy = client.post(f"/v1/sessions/{sid}/messages", json={"message": "hello"})
        assert busy.status_code == 409 and busy.json()["error"]["type"] == "conflict"
        client.post(f"/v1/sessions/{sid}/responses/{rid}/cancel")
        assert list(sse_events(r.iter_lines()))[-1]["event"] == "message.cancelled"
    with client.stream("POST", f"/v1/sessions/{sid}/messages", json={"message": "Write a 2-word reply"}) as r:
        assert list(sse_events(r.iter_lines()))[-1]["event"] == "message.completed"


def test_a_stateless_turn_completes_and_bills_once(client: httpx.Client) -> None:
    with client.stream("POST", "/v1/responses", json={"input": "Write a 12-word note"}) as r:
        rid = r.headers["X-Response-Id"]
        events = list(sse_events(r.iter_lines()))
    assert [e["event"] for e in events] == ["response.created"] + ["response.delta"] * 12 + ["response.completed"]
    assert "".join(e["data"]["delta"] for e in events[1:-1]).count(" ") == 11
    kinds = sorted(e["kind"] for e in client.get("/v1/ledger", params={"response_id": rid}).json()["data"])
    assert kinds == ["debit", "usage"]


def test_an_idempotency_key_replays_the_same_turn_over_http(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": f"idem-{time.monotonic_ns()}"}
    with client.stream("POST", "/v1/responses", json={"input": "Write a 4-word note"}, headers=headers) as r:
        first = r.headers["X-Response-Id"]
        one = list(sse_events(r.iter_lines()))
    with client.stream("POST", "/v1/responses", json={"input": "Write a 4-word note"}, headers=headers) as r:
        assert r.headers["X-Response-Id"] == first
        two = list(sse_events(r.iter_lines()))
    assert one == two
    clash = client.post("/v1/responses", json={"input": "Write a 5-word note"}, headers=headers)
    assert clash.status_code == 422 and clash.json()["error"]["type"] == "idempotency_key_reused"


def test_keys_and_tenants_are_enforced(client: httpx.Client, local_api: LocalApi) -> None:
    with httpx.Client(base_url=local_api.url, timeout=30) as anon:
        assert anon.post("/v1/sessions", json={}).status_code == 401
        bad = anon.post("/v1/responses/resp_abc/cancel", headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 401 and bad.json()["error"]["type"] == "unauthorized"
        assert anon.post("/v1/responses", json={"input": "x"}).status_code == 401
    with client.stream("POST", "/v1/responses", json={"input": "Write a 5000-word essay"}) as r:
        rid = r.headers["X-Response-Id"]
        other_key = local_api.make_key("intruder")
        with httpx.Client(
            base_url=local_api.url, headers={"Authorization": f"Bearer {other_key}"}, timeout=30
        ) as other:
            assert other.post(f"/v1/responses/{rid}/cancel").status_code == 404
            assert other.get(f"/v1/responses/{rid}/events").status_code == 404
        assert client.post(f"/v1/responses/{rid}/cancel").status_code == 202
        assert list(sse_events(r.iter_lines()))[-1]["event"] == "response.cancelled"


def test_bad_input_gets_a_clear_error_and_starts_nothing(client: httpx.Client) -> None:
    sid = client.post("/v1/sessions", json={"persistent": True}).json()["id"]
    cases = [
        (f"/v1/sessions/{sid}/messages", b"{nope", 400),
        (f"/v1/sessions/{sid}/messages", b'{"message": 42}', 400),
        (f"/v1/sessions/{sid}/messages", b'{"message": ""}', 400),
        (f"/v1/sessions/{sid}/messages", b'{"message": "' + b"x" * 300_000 + b'"}', 413),
        ("/v1/sessions/sess_unknown123/messages", b'{"message": "hi"}', 404),
        ("/v1/responses", b'{"input": ["not", "a", "string"]}', 400),
        ("/v1/sessions", b'{"persistent": "yes"}', 400),
    ]
    for path, raw, status in cases:
        r = client.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == status, (path, raw[:30], r.text[:200])
        assert r.json()["error"]["message"]
    assert client.post(f"/v1/sessions/{sid}/responses/msg_unknown/cancel").status_code == 404
    assert client.post("/v1/responses/garbage!/cancel").status_code == 404
    assert client.get("/v1/responses/resp_x/events", headers={"Last-Event-ID": "-3"}).status_code in (400, 404)
    # the session is still idle: a message now starts a turn
    with client.stream("POST", f"/v1/sessions/{sid}/messages", json={"message": "Write a 1-word reply"}) as r:
        assert r.status_code == 200
        assert list(sse_events(r.iter_lines()))[-1]["event"] == "message.completed"


def test_a_cancel_sent_to_the_cancel_queue_ends_an_open_stream(client: httpx.Client, local_api: LocalApi) -> None:
    import json

    import boto3

    state = json.loads((local_api.state_dir / "local.json").read_text())
    sqs = boto3.client("sqs", endpoint_url=state["sqs_endpoint"], region_name=state["region"])
    with client.stream("POST", "/v1/responses", json={"input": "Write a 5000-word essay"}) as r:
        rid = r.headers["X-Response-Id"]
        sqs.send_message(
            QueueUrl=state["queue_urls"]["CancelQueue"],
            MessageBody=json.dumps({"turn_id": rid, "tenant": "dev", "reason": "user closed the tab"}),
        )
        events = list(sse_events(r.iter_lines()))
    assert events[-1]["event"] == "response.cancelled"
    assert events[-1]["data"]["cancel"] == {"reason": "user closed the tab", "source": "queue"}
    assert client.post(f"/v1/responses/{rid}/cancel").json()["status"] == "already_complete"
