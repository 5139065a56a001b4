"""The tasks dialect through its resolvers (the routes its functions serve), run on moto (unit)
and on DynamoDB Local (integration). Workers and callback deliveries run in-process, by hand,
so every interleaving of cancel, completion and delivery is chosen by the test."""

from __future__ import annotations

import builtins
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.cases.fixtures import Env
from tests.cases.replies import HttpReply
from tests.cases.store_cases import FAST, HookModel, eventually
from turnstop.dialects.registry import after_finish, all_renderers
from turnstop.dialects.tasks.cancel import tasks_cancel_app
from turnstop.dialects.tasks.handlers import api_app
from turnstop.platform.settings import Settings
from turnstop.runtime.model import ScriptedModel
from turnstop.runtime.runner import TurnRunner
from turnstop.store import Store

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TENANT = "dev"
SECRET = "whsec_test_secret"
LEASE_MS = 30_000
HOSTS = {
    "hooks.example.com": ["93.184.216.34"],
    "internal.example.com": ["10.0.0.7"],
    "mixed.example.com": ["93.184.216.34", "169.254.169.254"],
    "localhost": ["127.0.0.1"],
}
TASK_KEYS = {
    "object", "task_id", "status", "capability", "model", "resolved_model", "metadata", "input", "progress",
    "output", "warnings", "error", "usage", "billing", "callback", "created_at", "started_at", "completed_at",
    "cancel_requested_at", "links",
}  # fmt: skip
USAGE_KEYS = {
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens", "image_count",
    "image_pixels", "video_seconds", "audio_seconds", "characters", "lines", "credits", "credits_usd_reference",
}  # fmt: skip
LONG = "Write a 5000-word essay on stop buttons"


def resolve(host: str, port: int) -> list[str]:
    if host not in HOSTS:
        raise OSError("unknown host")
    return HOSTS[host]


class FakeSqs:
    """Both queues: what was sent where, with its delay."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], int]] = []

    def send_message(self, QueueUrl: str, MessageBody: str, DelaySeconds: int = 0) -> dict[str, str]:  # noqa: N803
        self.sent.append((QueueUrl, json.loads(MessageBody), DelaySeconds))
        return {"MessageId": str(len(self.sent))}

    def on(self, queue: str) -> list[tuple[str, int]]:
        return [(b.get("turn_id") or b["task_id"], d) for q, b, d in self.sent if q == queue]


class Reply(HttpReply):
    @property
    def error(self) -> dict[str, Any]:
        body = self.json
        assert set(body) == {"object", "error", "request_id"} and body["object"] == "error", body
        assert set(body["error"]) == {"code", "message", "retryable"}, body
        assert body["request_id"] == self.headers["x-request-id"]
        return dict(body["error"])


@dataclass
class TasksApi:
    env: Env
    settings_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sqs = FakeSqs()
        self.store = Store(
            self.env.store.table, clock=self.env.clock, queue_url="turns", callback_queue_url="callbacks",
            dynamodb=self.env.client, sqs=self.sqs,
        )  # fmt: skip
        self.settings = Settings(table=self.env.store.table, **self.settings_overrides)
        self.api = api_app(self.store, self.settings, resolve=resolve)
        self.cancel_app = tasks_cancel_app(self.store, self.settings, sleep=lambda s: None)
        self.store.callbacks.put_secret(TENANT, SECRET, only_if_absent=False)

    # -- HTTP

    def call(
        self, method: str, path: str, *, body: Any = None, raw: str | None = None, query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None, tenant: str | None = TENANT, end_user: str | None = None,
    ) -> Reply:  # fmt: skip
        name = "tasks_cancel.json" if path.endswith("/cancel") else "tasks_api.json"
        ev = copy.deepcopy(json.loads((EVENTS / name).read_text()))
        ev["rawPath"] = path
        ev["requestContext"]["http"].update(method=method, path=path)
        ev["rawQueryString"] = urlencode(query or {})
        ev["queryStringParameters"] = dict(query) if query else None
        ev["headers"] = {k: v for k, v in ev["headers"].items() if k not in ("idempotency-key", "x-request-id")}
        ev["headers"].update(headers or {})
        if end_user is not None:
            ev["headers"]["x-on-behalf-of"] = end_user
        ctx = {"tenant": tenant, "account_ids": "1", "key_id": f"key_{tenant}"} if tenant else {"anonymous": "true"}
        ev["requestContext"]["authorizer"] = {"lambda": ctx}
        ev["body"] = raw if raw is not None else (None if body is None else json.dumps(body))
        app = self.cancel_app if path.endswith("/cancel") else self.api
        out = app.resolve(ev, None)
        return Reply(out["statusCode"], {k.lower(): v for k, v in (out.get("headers") or {}).items()}, out["body"])

    def create(self, prompt: str = "Write a 20-word note", **kw: Any) -> Reply:
        body = kw.pop("body", None) or {"capability": "text.generate", "model": "auto", "input": {"prompt": prompt}}
        return self.call("POST", "/v1/tasks", body=body, **kw)

    def new(self, prompt: str = "Write a 20-word note", **extra: Any) -> str:
        body = {"capability": "text.generate", "model": "auto", "input": {"prompt": prompt}, **extra}
        reply = self.call("POST", "/v1/tasks", body=body)
        assert reply.status == 202, reply.text
        return str(reply.json["task_id"])

    def get(self, task_id: str, **kw: Any) -> Reply:
        return self.call("GET", f"/v1/tasks/{task_id}", **kw)

    def list(self, **query: str) -> Reply:
        return self.call("GET", "/v1/tasks", query=query)

    def list_as(self, tenant: str | None) -> Reply:
        return self.call("GET", "/v1/tasks", tenant=tenant)

    def cancel(self, task_id: str, reason: str | None = None, **kw: Any) -> Reply:
        if reason is not None:
            kw.setdefault("body", {"reason": reason})
        return self.call("POST", f"/v1/tasks/{task_id}/cancel", **kw)

    # -- worker

    def run(self, task_id: str, model: Any = None, owner: str = "worker-a") -> str:
        runner = TurnRunner(
            self.store, lambda t: model or ScriptedModel(0), renderers=all_renderers(), lease_ms=LEASE_MS,
            owner=owner, on_finished=after_finish(self.store), cadence=FAST,
        )  # fmt: skip
        return str(runner.handle(task_id))

    def ledger(self, task_id: str) -> dict[str, dict[str, Any]]:
        entries = self.store.ledger.entries(TENANT, task_id)
        assert len({e["kind"] for e in entries}) == len(entries)
        return {e["kind"]: e for e in entries}

    def snapshot(self) -> builtins.list[dict[str, Any]]:
        items = self.env.client.scan(TableName=self.env.store.table, ConsistentRead=True)["Items"]
        return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


@pytest.fixture
def tasks(env: Env) -> TasksApi:
    return TasksApi(env)


def assert_task_shape(obj: dict[str, Any]) -> None:
    """Every field of the seed's object, with the seed's types."""
    assert set(obj) == TASK_KEYS, set(obj) ^ TASK_KEYS
    assert obj["object"] == "task" and obj["status"] in {"queued", "running", "succeeded", "failed", "cancelled"}
    assert set(obj["progress"]) == {"percent", "stage", "message"} and isinstance(obj["progress"]["percent"], int)
    assert 0 <= obj["progress"]["percent"] <= 100
    assert (obj["progress"]["percent"] == 100) == (obj["status"] == "succeeded")
    assert set(obj["usage"]) == USAGE_KEYS
    for line in obj["usage"]["lines"]:
        assert set(line) == {
            "meter",
            "quantity",
            "unit",
            "billed_amount_credits",
            "billed_amount_credits_usd_reference",
        }
        assert all(isinstance(v, str) for v in line.values())
    assert set(obj["billing"]) == {
        "charged_credits", "refunded_credits", "charged_credits_usd_reference", "refunded_credits_usd_reference",
        "currency",
    }  # fmt: skip
    assert obj["billing"]["currency"] == "USD"
    amounts = [v for k, v in obj["billing"].items() if k != "currency"]
    for value in (*amounts, obj["usage"]["credits"], obj["usage"]["credits_usd_reference"]):
        assert isinstance(value, str) and str(Decimal(value)) == value  # exact decimal strings, no exponent
    for w in obj["warnings"]:
        assert set(w) == {"code", "message", "field"}
        assert all(isinstance(v, str) and v for v in w.values()), w  # the seed's schema: strings
    if obj["error"] is not None:
        assert set(obj["error"]) == {"code", "message", "retryable"}
    if obj["callback"] is not None:
        assert set(obj["callback"]) == {"url", "status", "attempt_count", "delivered_at", "last_error"}
    for name in ("created_at", "started_at", "completed_at", "cancel_requested_at"):
        assert obj[name] is None or obj[name].endswith("Z")
    assert obj["links"] == {
        "self": f"http://127.0.0.1:3000/v1/tasks/{obj['task_id']}",
        "cancel": f"http://127.0.0.1:3000/v1/tasks/{obj['task_id']}/cancel",
    }


def D(value: str) -> Decimal:  # noqa: N802
    return Decimal(value)


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
    body = {"capability": "text.generate", "model": "turnstop:scripted-mini",
            "input": {"prompt": LONG, "max_output_tokens": 10}, "metadata": {"team": "billing"}}  # fmt: skip
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


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("malformed JSON", "{not json", "Malformed JSON"),
    ("not an object", "[1]", "must be a JSON object"),
    ("empty", "", "required"),
    ("missing input", {"capability": "text.generate", "model": "auto"}, "input"),
    ("prompt not a string", {"capability": "text.generate", "model": "auto", "input": {"prompt": 5}}, "input.prompt"),
    ("blank prompt", {"capability": "text.generate", "model": "auto", "input": {"prompt": "  "}}, "input.prompt"),
    ("unknown top field", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "callbak": {}}, "callbak"),
    ("unknown input field", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x", "temp": 1}}, "input.temp"),
    ("metadata value not a string", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "metadata": {"k": 1}}, "metadata"),
    ("too many metadata keys", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ("zero max_output_tokens", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x", "max_output_tokens": 0}}, "max_output_tokens"),
    ("callback not https", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "callback": {"url": "http://hooks.example.com/x"}}, "https"),
    ("callback with credentials", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "callback": {"url": "https://u:p@hooks.example.com/x"}}, "credentials"),
    ("callback to a private host", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "callback": {"url": "https://internal.example.com/x"}}, "private"),
    ("callback partly private", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "callback": {"url": "https://mixed.example.com/x"}}, "private"),
    ("callback to metadata IP", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "callback": {"url": "https://169.254.169.254/latest"}}, "private"),
    ("callback to localhost (knob off)", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "callback": {"url": "https://localhost/x"}}, "loopback"),
    ("callback host unknown", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "callback": {"url": "https://nowhere.invalid/x"}}, "resolve"),
    ("callback not a URL", {"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}, "callback": {"url": "hooks"}}, "https"),
]  # fmt: skip


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
    assert tasks.create(body={"capability": "text.generate", "model": "auto", "input": {"prompt": "x"},
                              "callback": {"url": "http://10.0.0.7/x"}}).status == 400  # fmt: skip


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
        tasks.get("task_doesnotexist0000"), tasks.get("not-a-task"), tasks.get(tid, tenant="other"),
        tasks.cancel("task_doesnotexist0000"), tasks.cancel("not-a-task"), tasks.cancel(tid, tenant="other"),
    ]  # fmt: skip
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
    [('{"reason": 5}', "reason"), ('{"reason": "' + "x" * 1001 + '"}', "reason"), ('{"reson": "x"}', "reson"), ("[", "Malformed")],
)  # fmt: skip
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
    from turnstop.idempotency.requests import idempotency_claim

    tid = tasks.new()
    path = f"/v1/tasks/{tid}/cancel"
    ev = {"headers": {"idempotency-key": "c-busy"}, "rawPath": path, "body": None,
          "requestContext": {"http": {"method": "POST"}}}  # fmt: skip
    claim = idempotency_claim(ev, TENANT, None)
    assert claim is not None and tasks.store.answers.claim(claim, 60_000) is None  # another request holds it
    reply = tasks.cancel(tid, headers={"Idempotency-Key": "c-busy"})
    assert reply.status == 409 and reply.error["retryable"] is True
    assert tasks.get(tid).json["status"] == "queued"
    tasks.env.clock.advance(seconds=61)  # that request died: its claim lapses and the retry runs
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
    tasks.call("POST", "/v1/tasks", body={"capability": "text.generate", "model": "auto", "input": {"prompt": "x"}},
               tenant="other")  # fmt: skip
    page = tasks.list().json
    assert set(page) == {"object", "data", "has_more", "next_cursor"} and page["object"] == "list"
    assert [t["task_id"] for t in page["data"]] == ids[::-1] and page["has_more"] is False
    for t in page["data"]:
        assert_task_shape(t)
        assert t["output"] == {}
    by_status = {s: [t["task_id"] for t in tasks.list(status=s).json["data"]] for s in
                 ("queued", "running", "succeeded", "failed", "cancelled")}  # fmt: skip
    assert by_status == {
        "queued": [ids[4], ids[3]], "running": [], "succeeded": [ids[0]], "failed": [ids[2]], "cancelled": [ids[1]],
    }  # fmt: skip
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
    "query", [{"status": "done"}, {"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "garbage!"}, {"cursor": "YWJj"}]
)  # fmt: skip
def test_a_bad_list_query_is_a_400(tasks: TasksApi, query: dict[str, str]) -> None:
    reply = tasks.list(**query)
    assert reply.status == 400 and reply.error["code"] == "invalid_request"
