"""The tasks dialect end to end: the local runtime over real HTTP (routes, authorizer, worker,
callback queue and delivery function from template.yaml), with a callback receiver on
127.0.0.1 that checks every signature."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DEV_WEBHOOK_SECRET, LocalApi, wait_for
from turnstop import webhooks

LONG = "Write a 5000-word essay on stop buttons"


class Receiver:
    """Answers 500 to the first ``fail`` deliveries, then 200; records each with its check."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.got: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                signature = self.headers.get("Turnstop-Signature", "")
                outer.got.append(
                    {
                        "signed": webhooks.verify(DEV_WEBHOOK_SECRET, raw, signature, int(time.time())),
                        "event_id": self.headers.get("Turnstop-Event-Id"),
                        "event": json.loads(raw),
                    }
                )
                status = 500 if len(outer.got) <= outer.fail else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/turnstop"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def client(local_api: LocalApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_api.url, headers={"Authorization": f"Bearer {local_api.key}"}, timeout=60) as c:
        yield c


def create(client: httpx.Client, prompt: str, **extra: Any) -> httpx.Response:
    body = {"capability": "text.generate", "model": "auto", "input": {"prompt": prompt}, **extra}
    return client.post("/v1/tasks", json=body)


def poll(client: httpx.Client, task_id: str, check: Any, what: str) -> dict[str, Any]:
    def once() -> dict[str, Any] | None:
        obj: dict[str, Any] = client.get(f"/v1/tasks/{task_id}").json()
        return obj if check(obj) else None

    return wait_for(once, what)


def test_create_watch_cancel_with_a_reason_refund_and_one_signed_callback(
    client: httpx.Client, local_api: LocalApi
) -> None:
    receiver = Receiver(fail=2)
    try:
        # Given a long task with a callback, charged when accepted
        created = create(client, LONG, metadata={"ticket": "T-1"}, callback={"url": receiver.url})
        assert created.status_code == 202, created.text
        task = created.json()
        tid = task["task_id"]
        assert task["status"] == "queued" and task["links"]["self"] == f"{local_api.url}/v1/tasks/{tid}"
        charged = Decimal(task["billing"]["charged_credits"])
        assert charged > 0
        # When it runs, its progress and output move
        first = poll(client, tid, lambda t: t["usage"]["output_tokens"] > 0, "the task to produce output")
        later = poll(
            client, tid, lambda t: t["usage"]["output_tokens"] > first["usage"]["output_tokens"], "more output"
        )
        assert first["status"] == later["status"] == "running" and later["progress"]["stage"] == "generating"
        assert 0 <= first["progress"]["percent"] <= later["progress"]["percent"] < 100
        assert len(later["output"]["text"].split()) == later["usage"]["output_tokens"]
        # and the caller cancels it with a reason
        cancel = client.post(f"/v1/tasks/{tid}/cancel", json={"reason": "The customer closed the report"})
        assert cancel.status_code == 202, cancel.text
        assert cancel.json()["status"] == "running" and cancel.json()["cancel_requested_at"]
        # Then it ends cancelled, with the reason, refunded in full
        final = poll(client, tid, lambda t: t["status"] == "cancelled", "the task to end cancelled")
        assert final["error"] == {"code": "cancelled", "message": "The customer closed the report", "retryable": False}
        assert Decimal(final["billing"]["refunded_credits"]) == charged and final["usage"]["credits"] == "0"
        assert 0 < final["usage"]["output_tokens"] < 5000
        # and the ledger holds exactly one charge and one refund
        ledger = client.get("/v1/ledger", params={"response_id": tid}).json()["data"]
        assert sorted((e["kind"], e["credits"]) for e in ledger) == [("charge", str(charged)), ("refund", str(charged))]
        # and the receiver got one signed task.cancelled, after two failed attempts
        done = poll(client, tid, lambda t: t["callback"]["status"] == "delivered", "the callback to be delivered")
        assert done["callback"]["attempt_count"] == 3 and done["callback"]["last_error"] == "HTTP 500"
        assert len(receiver.got) == 3 and all(g["signed"] for g in receiver.got)
        assert len({g["event_id"] for g in receiver.got}) == 1
        assert {g["event"]["type"] for g in receiver.got} == {"task.cancelled"}
        delivered = receiver.got[-1]["event"]["task"]
        assert delivered["task_id"] == tid and delivered["status"] == "cancelled"
        assert delivered["output"]["text"] == final["output"]["text"]
        # and cancelling again changes nothing
        again = client.post(f"/v1/tasks/{tid}/cancel", json={"reason": "again"})
        assert again.status_code == 200 and [w["code"] for w in again.json()["warnings"]] == ["already_terminal"]
        assert again.json()["error"]["message"] == "The customer closed the report"
        assert len(receiver.got) == 3
    finally:
        receiver.close()


def test_each_cancel_case_over_http(client: httpx.Client) -> None:
    # a task cancelled right after it is accepted: cancelled at once (200) if no worker has it
    # yet, else stopped at its next step (202); either way it ends cancelled and fully refunded
    tid = create(client, LONG).json()["task_id"]
    early = client.post(f"/v1/tasks/{tid}/cancel")
    assert (early.status_code, early.json()["status"]) in {(200, "cancelled"), (202, "running")}
    final = poll(client, tid, lambda t: t["status"] == "cancelled", "the early cancel to land")
    assert final["billing"]["refunded_credits"] == final["billing"]["charged_credits"]
    # a finished task: 200, unchanged, with a warning
    done = create(client, "Write a 3-word note").json()["task_id"]
    succeeded = poll(client, done, lambda t: t["status"] == "succeeded", "a short task to succeed")
    late = client.post(f"/v1/tasks/{done}/cancel", json={"reason": "too late"})
    assert late.status_code == 200 and late.json()["status"] == "succeeded"
    assert [w["code"] for w in late.json()["warnings"]] == ["already_terminal"]
    assert {**late.json(), "warnings": []} == succeeded
    assert Decimal(succeeded["billing"]["charged_credits"]) - Decimal(succeeded["billing"]["refunded_credits"]) == (
        Decimal(succeeded["usage"]["credits"])
    )
    # unknown ids, bad bodies and missing keys: the seed's error object, nothing changed
    missing = client.post("/v1/tasks/task_doesnotexist0000/cancel")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    too_long = client.post(f"/v1/tasks/{done}/cancel", json={"reason": "x" * 1001})
    assert too_long.status_code == 400 and too_long.json()["object"] == "error"
    anonymous = httpx.post(f"{client.base_url}/v1/tasks/{done}/cancel", timeout=30)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"


def test_ten_creates_with_one_key_at_once_make_one_task(client: httpx.Client) -> None:
    body = {"capability": "text.generate", "model": "auto", "input": {"prompt": "Write a 4-word note"}}

    def send(_: int) -> httpx.Response:
        return client.post("/v1/tasks", json=body, headers={"Idempotency-Key": "e2e-burst"})

    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(send, range(10)))
    assert {r.status_code for r in replies} == {202} and len({r.text for r in replies}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in replies) == 9
    tid = replies[0].json()["task_id"]
    ledger = client.get("/v1/ledger", params={"response_id": tid}).json()["data"]
    assert [e["kind"] for e in ledger if e["kind"] == "charge"] == ["charge"]
    other = client.post("/v1/tasks", json={**body, "metadata": {"a": "b"}}, headers={"Idempotency-Key": "e2e-burst"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    listed = client.get("/v1/tasks", params={"limit": "100"}).json()["data"]
    assert [t["task_id"] for t in listed].count(tid) == 1


def test_request_ids_are_echoed_generated_and_malformed_ones_refused(client: httpx.Client) -> None:
    created = client.post(
        "/v1/tasks",
        json={"capability": "text.generate", "model": "auto", "input": {"prompt": "Write a 2-word note"}},
        headers={"X-Request-Id": "client-req-1"},
    )
    assert created.headers["X-Request-Id"] == "client-req-1"
    tid = created.json()["task_id"]
    assert client.get(f"/v1/tasks/{tid}").headers["X-Request-Id"]
    bad = client.get(f"/v1/tasks/{tid}", headers={"X-Request-Id": "r" * 201})
    assert bad.status_code == 400 and bad.json()["request_id"] == bad.headers["X-Request-Id"] != "r" * 201
