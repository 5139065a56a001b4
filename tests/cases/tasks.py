"""The tasks dialect driven through its functions' handlers, for tests: a client (`TasksApi`), the
queues it sends to, and the seed's object shape."""

from __future__ import annotations

import builtins
import copy
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.cases.fixtures import Env
from tests.cases.replies import HttpReply
from tests.cases.turns import FAST
from turnstop.dialects.registry import after_finish, all_renderers
from turnstop.dialects.tasks.answers import TaskObject
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
    "object",
    "task_id",
    "status",
    "capability",
    "model",
    "resolved_model",
    "metadata",
    "input",
    "progress",
    "output",
    "warnings",
    "error",
    "usage",
    "billing",
    "callback",
    "created_at",
    "started_at",
    "completed_at",
    "cancel_requested_at",
    "links",
}
USAGE_KEYS = {
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "image_count",
    "image_pixels",
    "video_seconds",
    "audio_seconds",
    "characters",
    "lines",
    "credits",
    "credits_usd_reference",
}
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
            self.env.store.table,
            clock=self.env.clock,
            queue_url="turns",
            callback_queue_url="callbacks",
            dynamodb=self.env.client,
            sqs=self.sqs,
        )
        self.settings = Settings(table=self.env.store.table, **self.settings_overrides)
        self.api = api_app(self.store, self.settings, resolve=resolve)
        self.cancel_app = tasks_cancel_app(self.store, self.settings, sleep=lambda s: None)
        self.store.callbacks.put_secret(TENANT, SECRET, only_if_absent=False)

    # -- HTTP

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: str | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        tenant: str | None = TENANT,
        end_user: str | None = None,
    ) -> Reply:
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
            self.store,
            lambda t: model or ScriptedModel(0),
            renderers=all_renderers(),
            lease_ms=LEASE_MS,
            owner=owner,
            on_finished=after_finish(self.store),
            cadence=FAST,
        )
        return str(runner.handle(task_id))

    def ledger(self, task_id: str) -> dict[str, dict[str, Any]]:
        entries = self.store.ledger.entries(TENANT, task_id)
        assert len({e["kind"] for e in entries}) == len(entries)
        return {e["kind"]: e for e in entries}

    def snapshot(self) -> builtins.list[dict[str, Any]]:
        items = self.env.client.scan(TableName=self.env.store.table, ConsistentRead=True)["Items"]
        return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def assert_task_shape(obj: dict[str, Any]) -> None:
    """Every field of the seed's object, with the seed's types."""
    assert set(obj) == TASK_KEYS, set(obj) ^ TASK_KEYS
    TaskObject.model_validate(obj)  # the answer's own model (the document's schema)
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
        "charged_credits",
        "refunded_credits",
        "charged_credits_usd_reference",
        "refunded_credits_usd_reference",
        "currency",
    }
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
