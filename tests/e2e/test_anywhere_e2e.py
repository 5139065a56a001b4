"""Cancel from anywhere through the local runtime over real HTTP (and its cancel queue): a bulk
cancel of a tenant's 200 in-flight turns across dialects, bulk pages through the queue and a
redelivered one, cancels by Idempotency-Key racing their starts, a deadline firing while the
model is silent, and the events every cancel sends out (``events.jsonl``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

import boto3
import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import LocalApi, sse_events, wait_for
from tests.e2e.test_chat_e2e import sign_in

SILENT = "Think for 120 seconds, then write a 5-word note"  # in flight, and quiet, until stopped
TERMINAL = ("cancelled", "completed", "failed", "incomplete")


def client(api: LocalApi, key: str) -> httpx.Client:
    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def events_out(api: LocalApi) -> list[dict[str, Any]]:
    path = api.state_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def events_for(api: LocalApi, ids: set[str], timeout: float = 60) -> dict[str, dict[str, Any]]:
    def found() -> dict[str, dict[str, Any]] | None:
        got = {e["detail"]["turn_id"]: e for e in events_out(api) if e["detail"]["turn_id"] in ids}
        return got if len(got) == len(ids) else None

    return wait_for(found, f"events of {len(ids)} turns", timeout)


class Streams:
    """SSE streams read on threads of their own, so many can stay open at once."""

    def __init__(self) -> None:
        self.ids: dict[int, threading.Event] = {}
        self.out: dict[int, dict[str, Any]] = {}
        self.threads: list[threading.Thread] = []

    def open(self, c: httpx.Client, method: str, path: str, **kw: Any) -> str:
        n = len(self.threads)
        ready = self.ids[n] = threading.Event()

        def read() -> None:
            with c.stream(method, path, **kw) as r:
                self.out[n] = {"status": r.status_code, "rid": r.headers.get("X-Response-Id")}
                ready.set()
                self.out[n]["events"] = list(sse_events(r.iter_lines()))

        t = threading.Thread(target=read, daemon=True)
        t.start()
        self.threads.append(t)
        assert ready.wait(60), path
        assert self.out[n]["status"] == 200, self.out[n]
        return str(self.out[n]["rid"])

    def finished(self, timeout: float = 60) -> list[dict[str, Any]]:
        for t in self.threads:
            t.join(timeout)
            assert not t.is_alive(), "a stream did not end"
        return [self.out[i] for i in range(len(self.threads))]


def ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def start_many(start: Callable[[], str], n: int) -> list[str]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda _: start(), range(n)))


def status_of(c: httpx.Client, dialect: str, turn_id: str) -> str:
    if dialect == "llm":
        return str(c.get(f"/api/v1/llm/responses/{turn_id}").json()["status"])
    if dialect == "omni":
        return str(c.get(f"/v1/omni-ai/responses/{turn_id}", params={"account_id": 1}).json()["data"]["status"])
    return str(c.get(f"/v1/tasks/{turn_id}").json()["status"])


@pytest.fixture(scope="module")
def operator(local_api: LocalApi) -> Iterator[dict[str, str]]:
    keys = {
        "user": local_api.make_key("acme-bulk"),
        "admin": local_api.make_key("acme-bulk", admin=True),
        "other": local_api.make_key("zeta-bulk"),
    }
    yield keys


def test_a_bulk_cancel_stops_all_200_in_flight_turns_of_a_tenant_across_dialects(
    local_api: LocalApi, operator: dict[str, str]
) -> None:
    mine, theirs = client(local_api, operator["user"]), client(local_api, operator["other"])
    streams = Streams()  # a few turns followed live: every one must end with its …cancelled event
    sessions = [ok(mine.post("/v1/sessions", json={"persistent": False}), 201)["id"] for _ in range(6)]
    live = [streams.open(mine, "POST", f"/v1/sessions/{sid}/messages", json={"message": SILENT}) for sid in sessions]
    live += [streams.open(mine, "POST", "/v1/responses", json={"input": SILENT}) for _ in range(3)]
    llm_body = {"model": "turnstop:scripted", "input": SILENT, "background": True}
    llm_streamed = [
        streams.open(mine, "POST", "/api/v1/llm/responses", json={**llm_body, "stream": True}) for _ in range(3)
    ]
    omni_body = {"type": "instant", "account_id": 1, "text": SILENT}
    task_body = {"capability": "text.generate", "model": "auto", "input": {"prompt": SILENT}}
    background = {
        "llm": llm_streamed + start_many(lambda: ok(mine.post("/api/v1/llm/responses", json=llm_body))["id"], 60),
        "omni": start_many(
            lambda: ok(mine.post("/v1/omni-ai/threads", json=omni_body), 201)["data"]["response_id"], 62
        ),
        "tasks": start_many(lambda: ok(mine.post("/v1/tasks", json=task_body), 202)["task_id"], 66),
    }
    others = start_many(lambda: ok(theirs.post("/api/v1/llm/responses", json=llm_body))["id"], 3)
    every = set(live) | {t for ids in background.values() for t in ids}
    assert len(every) == 200

    # When an operator stops everything of the tenant
    ops = client(local_api, operator["admin"])
    out = ops.post("/v1/admin/cancels", json={"scope": {"tenant": "acme-bulk"}, "reason": "billing stop"})
    # Then the report's counts add up, every turn was matched once and cancelled by this request
    # (what did not fit the request's own time went on through the queue: 202, then followed)
    assert out.status_code in (200, 202), out.text
    report = out.json()
    if out.status_code == 202:
        location = out.headers["Location"]
        report = wait_for(lambda: (r := ops.get(location).json())["status"] == "completed" and r, "the report")
    assert (report["matched"], report["cancelled"], report["already_finished"], report["failed"]) == (200, 200, 0, 0)
    assert report["status"] == "completed" and report["pages"] >= 8  # 25 a page (and one found empty, maybe)
    # and every stream ends with its …cancelled event
    for stream in streams.finished():
        assert stream["events"][-1]["event"] in ("message.cancelled", "response.cancelled"), stream["rid"]
    # and every turn ends cancelled: its terminal transition went out as a turn.cancelled event,
    # with the bulk cancel's id, reason and timings
    sent = events_for(local_api, every)
    for turn_id, event in sent.items():
        d = event["detail"]
        assert event["source"] == "turnstop" and event["detail-type"] == "turn.cancelled", turn_id
        assert (d["tenant"], d["source"], d["reason"], d["batch"], d["billed"]) == (
            "acme-bulk",
            "admin",
            "billing stop",
            report["id"],
            False,
        )
        assert d["cancel_requested_at"] and d["cancel_observed_at"] and d["cancel_latency_ms"] >= 0
    assert {e["detail"]["dialect"] for e in sent.values()} == {"sessions", "llm", "omni", "tasks"}
    # and each dialect says so in its own words
    wanted = {"llm": "cancelled", "omni": "canceled", "tasks": "cancelled"}
    for dialect, ids in background.items():
        assert {status_of(mine, dialect, t) for t in ids[-3:]} == {wanted[dialect]}, dialect
    # and another tenant's turns are untouched
    assert all(
        theirs.get(f"/api/v1/llm/responses/{rid}").json()["status"] in ("queued", "in_progress") for rid in others
    )
    for rid in others:  # let the other tenant's turns go
        theirs.post(f"/api/v1/llm/responses/{rid}/cancel")


def test_the_admin_endpoint_refuses_other_keys_and_tenants_and_changes_nothing(
    local_api: LocalApi, operator: dict[str, str]
) -> None:
    user, ops = client(local_api, operator["user"]), client(local_api, operator["admin"])
    rid = user.post("/api/v1/llm/responses", json={"model": "turnstop:scripted", "input": SILENT, "background": True})
    turn_id = rid.json()["id"]
    assert user.post("/v1/admin/cancels", json={"scope": {"tenant": "acme-bulk"}}).status_code == 403
    foreign = ops.post("/v1/admin/cancels", json={"scope": {"tenant": "zeta-bulk"}})
    assert foreign.status_code == 403 and foreign.json()["error"]["type"] == "forbidden"
    assert ops.post("/v1/admin/cancels", json={"scope": {}}).status_code == 400
    assert user.get(f"/api/v1/llm/responses/{turn_id}").json()["status"] in ("queued", "in_progress")
    user.post(f"/api/v1/llm/responses/{turn_id}/cancel")


def test_a_scope_message_runs_its_pages_through_the_queue_and_a_redelivered_page_counts_once(
    local_api: LocalApi,
) -> None:
    user = client(local_api, local_api.make_key("queue-co"))
    ops = client(local_api, local_api.make_key("queue-co", admin=True))
    body = {"model": "turnstop:scripted", "input": SILENT, "background": True}
    ids = start_many(lambda: ok(user.post("/api/v1/llm/responses", json=body))["id"], 30)
    state = json.loads((local_api.state_dir / "local.json").read_text())
    sqs = boto3.client(
        "sqs",
        endpoint_url=state["sqs_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    url = state["queue_urls"]["CancelQueue"]
    message = {"scope": {"tenant": "queue-co"}, "reason": "moderation", "actor": "svc-moderation"}
    sent = sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))
    report_url = f"/v1/admin/cancels/sqs-{sent['MessageId']}"
    done = wait_for(
        lambda: (r := ops.get(report_url)).status_code == 200 and r.json()["status"] == "completed" and r.json(),
        "the queued bulk cancel's report",
    )
    assert (done["matched"], done["cancelled"], done["pages"], done["source"]) == (30, 30, 2, "queue")
    for rid in ids:
        wait_for(lambda rid=rid: user.get(f"/api/v1/llm/responses/{rid}").json()["status"] == "cancelled", rid)

    # When the first page's message is delivered again (as SQS does after a lost delete)
    record = {
        **json.loads((ROOT / "events" / "cancel_consumer.json").read_text())["Records"][0],
        "messageId": sent["MessageId"],
        "body": json.dumps(message),
    }
    record["attributes"]["ApproximateReceiveCount"] = "2"
    event = local_api.state_dir / "redelivered.json"
    event.write_text(json.dumps({"Records": [record]}))
    invoked = subprocess.run(
        [sys.executable, "-m", "turnstop_local", "invoke", "CancelConsumerFunction", "-e", str(event)],
        cwd=ROOT,
        env={**os.environ, "TURNSTOP_STATE_DIR": str(local_api.state_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(invoked.stdout) == {"batchItemFailures": []}

    # Then it and the page it sends on again are processed, and nothing is counted twice
    def drained() -> bool:
        got = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return got == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    wait_for(drained, "the re-sent page processed")
    again = ops.get(report_url).json()
    assert (again["matched"], again["cancelled"], again["already_finished"], again["pages"]) == (30, 30, 0, 2)
    sent_events = events_for(local_api, set(ids))
    assert {e["detail"]["source"] for e in sent_events.values()} == {"queue"}
    assert {e["detail"]["actor"] for e in sent_events.values()} == {"svc-moderation"}


def test_a_cancel_by_key_before_the_start_makes_a_born_cancelled_stream(local_api: LocalApi) -> None:
    c = client(local_api, local_api.key)
    # Given a cancel by the key before anything started
    early = c.post("/v1/responses/cancel", headers={"Idempotency-Key": "e2e-tomb-1"})
    assert (early.status_code, early.json()) == (202, {"response_id": None, "status": "cancelling"})
    # When the start with that key comes
    with c.stream(
        "POST", "/v1/responses", json={"input": "Write a 50-word note"}, headers={"Idempotency-Key": "e2e-tomb-1"}
    ) as r:
        rid = r.headers["X-Response-Id"]
        events = list(sse_events(r.iter_lines()))
    # Then its stream opens and ends cancelled: nothing ran, nothing is billed
    assert [e["event"] for e in events] == ["response.created", "response.cancelled"]
    assert c.get("/v1/ledger", params={"response_id": rid}).json()["data"] == []
    later = c.post("/v1/responses/cancel", headers={"Idempotency-Key": "e2e-tomb-1"})
    assert later.json()["response_id"] == rid
    event = events_for(local_api, {rid})[rid]["detail"]
    assert event["source"] == "api" and event["usage"]["output_tokens"] == 0 and event["started_at"] is None


def test_a_start_before_its_cancel_by_key_is_cancelled_by_it(local_api: LocalApi) -> None:
    c = client(local_api, local_api.key)
    streams = Streams()
    rid = streams.open(c, "POST", "/v1/responses", json={"input": SILENT}, headers={"Idempotency-Key": "e2e-tomb-2"})
    out = c.post("/v1/responses/cancel", headers={"Idempotency-Key": "e2e-tomb-2"})
    assert (out.status_code, out.json()) == (202, {"response_id": rid, "status": "cancelling"})
    (stream,) = streams.finished()
    assert stream["events"][-1]["event"] == "response.cancelled"


def test_cancels_by_key_racing_their_starts_always_end_the_turn_cancelled(local_api: LocalApi) -> None:
    c = client(local_api, local_api.key)

    def race(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        key = f"e2e-race-{i}"
        go = threading.Barrier(2)
        answer: dict[str, Any] = {}

        def cancel() -> None:
            go.wait()
            reply = c.post("/v1/tasks/cancel", headers={"Idempotency-Key": key})
            answer.update(status=reply.status_code, body=reply.json())

        t = threading.Thread(target=cancel)
        t.start()
        go.wait()
        created = c.post(
            "/v1/tasks",
            headers={"Idempotency-Key": key},
            json={"capability": "text.generate", "model": "auto", "input": {"prompt": SILENT}},
        )
        t.join()
        return answer, created.json()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(race, range(8)))
    for answer, task in results:
        if answer["body"]["task_id"] is None:  # the tombstone came first: born cancelled
            assert answer["status"] == 202 and task["status"] == "cancelled", (answer, task)
        else:  # the create came first: the key named it
            assert answer["body"]["task_id"] == task["task_id"] and answer["status"] in (200, 202), (answer, task)
        wait_for(
            lambda task=task: c.get(f"/v1/tasks/{task['task_id']}").json()["status"] == "cancelled", task["task_id"]
        )


def test_a_deadline_fires_while_the_model_is_silent(local_api: LocalApi) -> None:
    c = client(local_api, local_api.key)
    with c.stream("POST", "/v1/responses", json={"input": SILENT}, headers={"Turnstop-Max-Duration": "1"}) as r:
        rid = r.headers["X-Response-Id"]
        events = list(sse_events(r.iter_lines()))
    assert [e["event"] for e in events] == ["response.created", "response.cancelled"]
    llm = c.post(
        "/api/v1/llm/responses",
        json={"model": "turnstop:scripted", "input": SILENT, "background": True, "max_duration_seconds": 0.5},
    )
    lid = llm.json()["id"]
    wait_for(lambda: c.get(f"/api/v1/llm/responses/{lid}").json()["status"] == "cancelled", "the llm deadline")
    sent = events_for(local_api, {rid, lid})
    for event in sent.values():
        d = event["detail"]
        assert (d["source"], d["actor"], d["status"]) == ("deadline", "turnstop", "cancelled")
        assert d["cancel_latency_ms"] is not None and d["cancel_latency_ms"] >= 0
    for bad in ("0", "-3", "901", "soon"):
        reply = c.post("/v1/responses", json={"input": "hi"}, headers={"Turnstop-Max-Duration": bad})
        assert reply.status_code == 400, bad


def test_a_deadline_stops_a_chat_reply_and_a_bad_one_is_refused_in_the_chats_shape(local_api: LocalApi) -> None:
    with closing(sign_in(local_api, "dana")) as browser:
        # Given a chat reply that says nothing for two minutes, asked to stop after one second
        with browser.stream(
            "POST", "/chat/stream", json={"message": SILENT}, headers={"Turnstop-Max-Duration": "1"}
        ) as r:
            thread_id = r.headers["X-Thread-Id"]
            events = list(sse_events(r.iter_lines()))
        # Then the runtime cancels it itself, and its event says so
        assert events[-1]["event"] == "cancelled", events
        sent = wait_for(
            lambda: [e for e in events_out(local_api) if e["detail"]["scope"] == f"chat:{thread_id}"],
            "the chat reply's turn event",
        )
        (event,) = sent
        assert (event["detail-type"], event["detail"]["dialect"], event["detail"]["source"]) == (
            "turn.cancelled",
            "chat",
            "deadline",
        )
        # And a deadline out of range is the chat's own 400, and starts nothing
        bad = browser.post("/chat", json={"message": "hello"}, headers={"Turnstop-Max-Duration": "901"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_request", bad.text
