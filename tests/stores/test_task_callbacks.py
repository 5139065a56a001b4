"""Task callbacks: the outbox written with a task's end, signed deliveries, retries with backoff,
at most one ``delivered``, and the sweeper's re-send of overdue callbacks. Run on moto (unit)
and DynamoDB Local (integration); the receiver is a fake transport, the clock is moved by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.cases.fixtures import Env, only_on_dynamodb_local
from tests.cases.tasks import HOSTS, SECRET, TENANT, TasksApi, resolve
from tests.cases.turns import HookModel
from turnstop import webhooks
from turnstop.auth import ensure_webhook_secret
from turnstop.dialects.tasks.callbacks import Deliverer, backoff_s
from turnstop.store.callbacks import REDRIVE_AFTER_MS

URL = "https://hooks.example.com/turnstop"


class Receiver:
    """A fake transport: answers each POST from a script (a status, or None for a timeout)."""

    def __init__(self, *script: int | None, during: Callable[[], object] | None = None) -> None:
        self.script = list(script)
        self.posts: list[tuple[webhooks.Target, bytes, dict[str, str]]] = []
        self.during = during

    def __call__(
        self, target: webhooks.Target, body: bytes, headers: dict[str, str], timeout: float
    ) -> webhooks.Delivery:
        self.posts.append((target, body, headers))
        if self.during is not None:
            hook, self.during = self.during, None
            hook()
        status = self.script.pop(0) if self.script else 200
        return webhooks.Delivery(None, f"timeout after {timeout:g} s") if status is None else webhooks.Delivery(status)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, _ in self.posts]


@pytest.fixture
def tasks(env: Env) -> TasksApi:
    return TasksApi(env, {"callback_backoff_base_seconds": 1, "callback_max_attempts": 3})


def deliverer(tasks: TasksApi, receiver: Receiver, owner: str = "cb-a") -> Deliverer:
    return Deliverer(tasks.store, tasks.settings, owner=owner, resolve=resolve, post=receiver)


def finished(tasks: TasksApi, *, cancel: bool = False, prompt: str = "Write a 5-word note") -> str:
    tid = tasks.new(prompt, callback={"url": URL})
    if cancel:
        hooks = {2: lambda: tasks.cancel(tid, "user left")}
        assert tasks.run(tid, HookModel(5, hooks)) == "cancelled"
    else:
        assert tasks.run(tid) == "completed"
    return tid


def test_a_finished_task_writes_its_callback_with_its_end_and_queues_it(tasks: TasksApi) -> None:
    tid = tasks.new("Write a 3-word note", callback={"url": URL})
    assert tasks.store.callbacks.get(tid) is None  # nothing to deliver while it runs
    assert tasks.run(tid) == "completed"
    cb = tasks.store.callbacks.get(tid)
    assert cb is not None and (cb.status, cb.attempt_count, cb.event_type) == ("pending", 0, "task.succeeded")
    assert tasks.sqs.on("callbacks") == [(tid, 0)]
    assert tasks.get(tid).json["callback"] == {
        "url": URL,
        "status": "pending",
        "attempt_count": 0,
        "delivered_at": None,
        "last_error": None,
    }
    plain = tasks.new("Write a 3-word note")
    tasks.run(plain)
    assert tasks.store.callbacks.get(plain) is None and [t for t, _ in tasks.sqs.on("callbacks")] == [tid]


def test_a_delivery_is_signed_and_carries_the_final_task_once(tasks: TasksApi) -> None:
    tid = finished(tasks, cancel=True)
    receiver = Receiver(200)
    assert deliverer(tasks, receiver).deliver(tid) == "delivered"
    ((target, body, headers),) = receiver.posts
    assert (target.host, target.addresses, target.path) == ("hooks.example.com", ("93.184.216.34",), "/turnstop")
    now_s = tasks.env.clock.now_ms() // 1000
    assert webhooks.verify(SECRET, body, headers["Turnstop-Signature"], now_s)
    assert not webhooks.verify("whsec_wrong", body, headers["Turnstop-Signature"], now_s)
    assert not webhooks.verify(SECRET, body + b" ", headers["Turnstop-Signature"], now_s)
    assert headers["Turnstop-Signature"].startswith(f"t={now_s},v1=")
    assert headers["Turnstop-Event-Id"] == "evt_" + tid.removeprefix("task_")
    event = json.loads(body)
    assert event["type"] == "task.cancelled" and event["task"]["task_id"] == tid
    assert event["task"]["status"] == "cancelled" and event["task"]["error"]["message"] == "user left"
    assert event["task"]["billing"]["refunded_credits"] == event["task"]["billing"]["charged_credits"]
    shown = tasks.get(tid).json["callback"]
    assert (shown["status"], shown["attempt_count"], shown["last_error"]) == ("delivered", 1, None)
    assert shown["delivered_at"].endswith("Z")
    # a redelivered message (or the sweeper's) never sends a second successful callback
    assert deliverer(tasks, receiver, owner="cb-b").deliver(tid) == "already_delivered"
    assert len(receiver.posts) == 1


def test_failures_are_retried_with_backoff_then_delivered(tasks: TasksApi) -> None:
    tid = finished(tasks)
    receiver = Receiver(500, None, 204)
    d = deliverer(tasks, receiver)
    assert d.deliver(tid) == "retry_scheduled"
    assert tasks.sqs.on("callbacks")[-1] == (tid, 1)  # DelaySeconds: base
    shown = tasks.get(tid).json["callback"]
    assert (shown["status"], shown["attempt_count"], shown["last_error"]) == ("pending", 1, "HTTP 500")
    assert d.deliver(tid) == "not_due" and len(receiver.posts) == 1  # an early duplicate waits
    tasks.env.clock.advance(seconds=1)
    assert d.deliver(tid) == "retry_scheduled" and tasks.sqs.on("callbacks")[-1] == (tid, 2)  # 2 × base
    assert tasks.get(tid).json["callback"]["last_error"] == "timeout after 10 s"
    tasks.env.clock.advance(seconds=2)
    assert d.deliver(tid) == "delivered"
    shown = tasks.get(tid).json["callback"]
    assert (shown["status"], shown["attempt_count"]) == ("delivered", 3)
    assert [h["Turnstop-Delivery-Attempt"] for _, _, h in receiver.posts] == ["1", "2", "3"]
    assert len({h["Turnstop-Event-Id"] for _, _, h in receiver.posts}) == 1


def test_after_the_last_attempt_the_callback_is_failed_for_good(tasks: TasksApi) -> None:
    tid = finished(tasks)
    receiver = Receiver(500, 500, 410, 200)
    d = deliverer(tasks, receiver)
    results = []
    for wait in (0, 1, 2):
        tasks.env.clock.advance(seconds=wait)
        results.append(d.deliver(tid))
    assert results == ["retry_scheduled", "retry_scheduled", "failed"]
    shown = tasks.get(tid).json["callback"]
    assert (shown["status"], shown["attempt_count"], shown["last_error"]) == ("failed", 3, "HTTP 410")
    tasks.env.clock.advance(seconds=60)
    assert d.deliver(tid) == "already_failed" and len(receiver.posts) == 3
    assert tasks.store.callbacks.overdue(0) + [t for s in range(1, 8) for t in tasks.store.callbacks.overdue(s)] == []


def test_a_duplicate_message_during_an_attempt_does_not_send_again(tasks: TasksApi) -> None:
    tid = finished(tasks)
    other = Receiver(200)
    inner: list[str] = []
    receiver = Receiver(200, during=lambda: inner.append(deliverer(tasks, other, owner="cb-b").deliver(tid)))
    assert deliverer(tasks, receiver).deliver(tid) == "delivered"
    assert inner == ["not_due"] and other.posts == [] and len(receiver.posts) == 1


def test_a_sender_that_dies_after_the_receiver_said_2xx_leaves_a_resend_with_the_same_event_id(tasks: TasksApi) -> None:
    """The unavoidable at-least-once window (receivers dedupe by Turnstop-Event-Id)."""
    tid = finished(tasks)
    cb = tasks.store.callbacks.get(tid)
    assert cb is not None and tasks.store.callbacks.begin_attempt(cb, "dead-sender", 30_000, REDRIVE_AFTER_MS)
    receiver = Receiver(200)
    assert deliverer(tasks, receiver).deliver(tid) == "not_due"  # its lease still holds
    tasks.env.clock.advance(seconds=31)
    assert deliverer(tasks, receiver).deliver(tid) == "delivered"
    assert (
        receiver.posts[0][2]["Turnstop-Event-Id"] == cb.event_id
        and receiver.posts[0][2]["Turnstop-Delivery-Attempt"] == "2"
    )


def test_the_guard_runs_again_before_each_delivery(tasks: TasksApi, monkeypatch: pytest.MonkeyPatch) -> None:
    tid = finished(tasks)
    monkeypatch.setitem(HOSTS, "hooks.example.com", ["10.1.2.3"])  # the name now points inside
    receiver = Receiver(200)
    assert deliverer(tasks, receiver).deliver(tid) == "retry_scheduled"
    assert receiver.posts == [] and "private" in str(tasks.get(tid).json["callback"]["last_error"])


def test_a_lost_send_after_the_finish_is_re_sent_by_the_sweeper(tasks: TasksApi) -> None:
    class Refusing:
        def send_message(self, **kw: Any) -> None:
            raise RuntimeError("queue unavailable")

    tid = tasks.new("Write a 3-word note", callback={"url": URL})
    tasks.store.callbacks._sqs = Refusing()
    assert tasks.run(tid) == "completed"  # the finish stands; the hook's failure is logged
    tasks.store.callbacks._sqs = tasks.sqs
    assert tasks.sqs.on("callbacks") == []

    def overdue() -> list[str]:
        return [t for shard in range(8) for t in tasks.store.callbacks.overdue(shard)]

    assert overdue() == []
    tasks.env.clock.advance(ms=REDRIVE_AFTER_MS)
    assert overdue() == [tid]
    assert tasks.store.callbacks.mark_redriven(tid, REDRIVE_AFTER_MS) is True
    assert tasks.store.callbacks.mark_redriven(tid, REDRIVE_AFTER_MS) is False  # one re-send per window
    assert overdue() == []
    receiver = Receiver(200)
    assert deliverer(tasks, receiver).deliver(tid) == "delivered"
    tasks.env.clock.advance(ms=10 * REDRIVE_AFTER_MS)
    assert overdue() == []  # settled callbacks leave the index


def test_without_a_signing_secret_an_attempt_fails_and_is_retried(tasks: TasksApi) -> None:
    tid = finished(tasks)
    tasks.env.client.delete_item(
        TableName=tasks.store.table, Key={"pk": {"S": f"WEBHOOK#{TENANT}"}, "sk": {"S": "SECRET"}}
    )
    receiver = Receiver(200)
    assert deliverer(tasks, receiver).deliver(tid) == "retry_scheduled" and receiver.posts == []


def test_a_tenants_secret_is_created_once_and_kept(tasks: TasksApi) -> None:
    first = ensure_webhook_secret(tasks.store.table, "acme", store=tasks.store)
    assert first is not None and first.startswith("whsec_")
    assert ensure_webhook_secret(tasks.store.table, "acme", store=tasks.store) is None
    assert tasks.store.callbacks.secret("acme") == first
    assert ensure_webhook_secret(tasks.store.table, "acme", "whsec_set", replace=True, store=tasks.store) == "whsec_set"


def test_backoff_doubles_from_its_base_up_to_sqs_longest_delay() -> None:
    assert [backoff_s(30, n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
    assert [backoff_s(0.5, n) for n in (1, 2, 3)] == [1, 1, 2]


@only_on_dynamodb_local
def test_concurrent_deliveries_of_one_callback_post_once(env: Env) -> None:
    tasks = TasksApi(env)
    tid = finished(tasks)
    receiver = Receiver(200)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda i: deliverer(tasks, receiver, owner=f"cb-{i}").deliver(tid), range(6)))
    assert results.count("delivered") == 1 and len(receiver.posts) == 1
    assert set(results) <= {"delivered", "taken", "not_due", "already_delivered"}
