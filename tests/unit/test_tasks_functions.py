"""The tasks functions (tasks_api, tasks_cancel: the shared handlers, task_callbacks, and the worker
and sweeper) loaded by path and driven with the sample events in events/ — the events `invoke`
uses — inside moto; the callback goes over real HTTP to a receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.unit.functions_harness import Aws, Context, aws, load_event  # noqa: F401
from turnstop import webhooks
from turnstop.auth import ensure_webhook_secret


def body(resp: dict[str, Any]) -> Any:
    return json.loads(resp["body"])


def retarget(name: str, task_id: str) -> dict[str, Any]:
    return json.loads(json.dumps(load_event(name)).replace("task_example000000000000000", task_id))


class Receiver:
    """A webhook receiver on 127.0.0.1 that checks every signature it gets."""

    def __init__(self, secret: str, statuses: list[int]) -> None:
        self.secret, self.statuses = secret, statuses
        self.got: list[Any] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                signed = webhooks.verify(outer.secret, raw, self.headers["Turnstop-Signature"], int(outer.now_s))
                outer.got.append((signed, self.headers["Turnstop-Event-Id"], json.loads(raw)))
                self.send_response(outer.statuses.pop(0) if outer.statuses else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.now_s = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/turnstop"


@pytest.fixture
def callbacks_queue(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = aws.sqs.create_queue(QueueName=f"callbacks-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    monkeypatch.setenv("TURNSTOP_CALLBACK_QUEUE_URL", url)
    monkeypatch.setenv("TURNSTOP_CALLBACK_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("TURNSTOP_CALLBACK_BACKOFF_BASE_SECONDS", "0")
    yield url


def drain(aws: Aws, url: str) -> list[dict[str, Any]]:
    """The callback queue's messages as the sample event's records."""
    saved, aws.queue_url = aws.queue_url, url
    try:
        drained = aws.drain_queue()
    finally:
        aws.queue_url = saved
    sample = load_event("task_callbacks")["Records"][0]
    return [{**sample, "messageId": r["messageId"], "body": r["body"]} for r in drained]


def test_the_sample_events_drive_create_list_cancel_and_a_signed_callback(aws: Aws, callbacks_queue: str) -> None:
    secret = ensure_webhook_secret(aws.table, "dev", store=aws.store)
    assert secret is not None
    receiver = Receiver(secret, [503])
    api, cancel = aws.function("tasks_api"), aws.function("tasks_cancel")
    ev = load_event("tasks_api")
    ev["body"] = json.dumps({**json.loads(ev["body"]), "callback": {"url": receiver.url}})
    created = api.lambda_handler(ev, Context())
    assert created["statusCode"] == 202 and created["headers"]["X-Request-Id"] == "req-example-701"
    task = body(created)
    replay = api.lambda_handler(ev, Context())  # the sample carries an Idempotency-Key
    assert replay["body"] == created["body"] and replay["headers"]["Idempotent-Replayed"] == "true"
    listed = body(api.lambda_handler(load_event("tasks_api_list"), Context()))
    assert listed["data"] == []  # the sample lists cancelled tasks: none yet
    out = cancel.lambda_handler(retarget("tasks_cancel", task["task_id"]), Context())
    assert out["statusCode"] == 200 and body(out)["status"] == "cancelled"
    assert body(out)["error"]["message"] == "The customer closed the report"
    worker = aws.function("worker")
    assert worker.lambda_handler({"Records": aws.drain_queue()}, Context()) == {"batchItemFailures": []}
    listed = body(api.lambda_handler(load_event("tasks_api_list"), Context()))
    assert [t["task_id"] for t in listed["data"]] == [task["task_id"]]
    # the worker queued the callback; the first attempt gets a 503, the retry a 200
    fn = aws.function("task_callbacks")
    for _ in range(2):
        receiver.now_s = aws.store.now() // 1000
        records = drain(aws, callbacks_queue)
        assert len(records) == 1
        assert fn.lambda_handler({"Records": records}, Context()) == {"batchItemFailures": []}
    assert [(signed, e["type"]) for signed, _, e in receiver.got] == [(True, "task.cancelled")] * 2
    assert len({event_id for _, event_id, _ in receiver.got}) == 1
    final = body(api.lambda_handler(retarget("tasks_api_get", task["task_id"]), Context()))
    assert final["callback"]["status"] == "delivered" and final["callback"]["attempt_count"] == 2
    assert final["callback"]["last_error"] == "HTTP 503"
    receiver.server.shutdown()


def test_the_sample_events_for_an_unknown_task_are_404_and_a_settled_message(aws: Aws, callbacks_queue: str) -> None:
    out = aws.function("tasks_cancel").lambda_handler(load_event("tasks_cancel"), Context())
    assert out["statusCode"] == 404 and body(out) == {
        "object": "error",
        "error": {"code": "not_found", "message": "No such task", "retryable": False},
        "request_id": "req-example-704",
    }
    assert aws.function("tasks_api").lambda_handler(load_event("tasks_api_get"), Context())["statusCode"] == 404
    fn = aws.function("task_callbacks")
    assert fn.lambda_handler(load_event("task_callbacks"), Context()) == {"batchItemFailures": []}
    sample = load_event("task_callbacks")["Records"][0]
    records = [
        sample,
        {**sample, "messageId": "bad", "body": "{not json"},
        {**sample, "messageId": "extra", "body": '{"task_id": "x", "y": 1}'},
    ]
    assert fn.lambda_handler({"Records": records}, Context())["batchItemFailures"] == [
        {"itemIdentifier": "bad"},
        {"itemIdentifier": "extra"},
    ]


def test_the_sweeper_re_sends_an_overdue_callback(
    aws: Aws, callbacks_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from turnstop.core.clock import SYSTEM_CLOCK
    from turnstop.store.callbacks import REDRIVE_AFTER_MS

    ensure_webhook_secret(aws.table, "dev", store=aws.store)
    api = aws.function("tasks_api")
    ev = load_event("tasks_api")
    ev["body"] = json.dumps({**json.loads(ev["body"]), "callback": {"url": "https://93.184.216.34/hook"}})
    api.lambda_handler(ev, Context())
    aws.function("worker").lambda_handler({"Records": aws.drain_queue()}, Context())
    assert len(drain(aws, callbacks_queue)) == 1  # the worker's send; pretend it was lost
    sweeper = aws.function("sweeper")
    assert sweeper.lambda_handler(load_event("sweeper"), Context())["callbacks"] == []
    later = SYSTEM_CLOCK.now_ms() + REDRIVE_AFTER_MS + 1000
    monkeypatch.setattr(type(SYSTEM_CLOCK), "now_ms", lambda self: later)
    swept = sweeper.lambda_handler(load_event("sweeper"), Context())["callbacks"]
    assert len(swept) == 1 and [json.loads(r["body"])["task_id"] for r in drain(aws, callbacks_queue)] == swept
