"""The omni dialect through its resolvers (the same routes the functions serve), run on moto
(unit) and on DynamoDB Local (integration). Workers run in-process, by hand, so every
interleaving of cancel and completion is chosen by the test."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.cases.fixtures import Env, only_on_dynamodb_local
from tests.cases.turns import FAST, HookModel, eventually
from turnstop.core.turn import Status, Turn
from turnstop.dialects.omni.cancel import omni_cancel_app
from turnstop.dialects.omni.handlers import api_app
from turnstop.dialects.omni.wire import FORBIDDEN, MISSING_ACCOUNT
from turnstop.dialects.registry import all_renderers
from turnstop.http.api import request_id
from turnstop.idempotency.bindings import KeyBinding
from turnstop.platform.settings import Settings
from turnstop.runtime.model import ScriptedModel
from turnstop.runtime.runner import TurnRunner, WorkerResult

LEASE_MS = 30_000
# what every body carries for the test events' API Gateway request id "req-test"
REQUEST_ID = request_id({"requestContext": {"requestId": "req-test"}})
RESPONSE_RETENTION_S = 3600
THREAD_RETENTION_DAYS = 2


class Ctx:
    function_name = "omni-test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:omni-test"
    aws_request_id = "req-omni"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def data(self) -> Any:
        return self.body["data"]


@dataclass
class Omni:
    env: Env
    queued: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        settings = Settings(
            table=self.env.store.table,
            omni_response_retention_seconds=RESPONSE_RETENTION_S,
            omni_thread_retention_days=THREAD_RETENTION_DAYS,
            max_body_bytes=256 * 1024,
        )
        self.api = api_app(self.env.store, settings, enqueue=self._enqueue)
        self.cancel_app = omni_cancel_app(self.env.store, settings)

    def _enqueue(self, turn: Turn, idempotency: KeyBinding | None = None) -> None:
        self.queued.append(turn.id)

    # -- HTTP

    def call(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        *,
        tenant: str | None = "dev",
        accounts: str = "1,2",
        raw: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        q = {k: str(v) for k, v in (query or {}).items()}
        ctx = (
            {"tenant": tenant, "account_ids": accounts, "key_id": f"key_{tenant}"} if tenant else {"anonymous": "true"}
        )
        event = {
            "version": "2.0",
            "routeKey": f"{method} {path}",
            "rawPath": path,
            "rawQueryString": urlencode(q),
            "queryStringParameters": q or None,
            "headers": {"content-type": "application/json", **(headers or {})},
            "requestContext": {
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
                "requestId": "req-test",
                "authorizer": {"lambda": ctx},
                "stage": "$default",
            },
            "body": raw if raw is not None else (None if body is None else json.dumps(body)),
            "isBase64Encoded": False,
        }
        app = self.cancel_app if method == "DELETE" else self.api
        out = app.resolve(event, Ctx())
        hdrs = {k.lower(): v for k, v in (out.get("headers") or {}).items()}
        return Reply(out["statusCode"], hdrs, json.loads(out["body"]) if out.get("body") else None)

    def create_thread(self, text: str = "Write a 10-word note", account: int = 1, **kw: Any) -> Reply:
        return self.call(
            "POST", "/v1/omni-ai/threads", body={"type": "instant", "account_id": account, "text": text}, **kw
        )

    def send(self, thread_id: str, text: str = "And a 6-word follow-up", account: int = 1, **kw: Any) -> Reply:
        return self.call(
            "POST", f"/v1/omni-ai/threads/{thread_id}/messages", body={"text": text, "account_id": account}, **kw
        )

    def response(self, rid: str, account: int = 1, **kw: Any) -> Reply:
        return self.call("GET", f"/v1/omni-ai/responses/{rid}", {"account_id": account}, **kw)

    def cancel(self, rid: str, account: int = 1, **kw: Any) -> Reply:
        return self.call("DELETE", f"/v1/omni-ai/responses/{rid}", {"account_id": account}, **kw)

    def history(self, thread_id: str, account: int = 1, **query: Any) -> Reply:
        return self.call("GET", f"/v1/omni-ai/threads/{thread_id}/messages", {"account_id": account, **query})

    # -- worker

    def run(self, model: Any = None, owner: str = "worker-a") -> list[WorkerResult]:
        runner = TurnRunner(
            self.env.store,
            lambda turn: model or ScriptedModel(0),
            renderers=all_renderers(),
            lease_ms=LEASE_MS,
            owner=owner,
            cadence=FAST,
        )
        results = []
        while self.queued:
            results.append(runner.handle(self.queued.pop(0)))
        return results

    def snapshot(self) -> list[dict[str, Any]]:
        """Every item in the table, to show that rejected requests changed nothing."""
        items = self.env.client.scan(TableName=self.env.store.table, ConsistentRead=True)["Items"]
        return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


@pytest.fixture
def omni(env: Env) -> Omni:
    return Omni(env)


def assistant(history: Reply) -> list[dict[str, Any]]:
    return [m for m in history.data if m["role"] == "ASSISTANT"]


# ---------------------------------------------------------------------------- create, poll, history


def test_creating_a_thread_stores_the_user_message_and_queues_one_response(omni: Omni) -> None:
    r = omni.create_thread("Write a 10-word note")
    assert r.status == 201 and set(r.data) == {"response_id", "thread_id", "user_message_id"}
    assert r.body["metadata"]["request_id"] == REQUEST_ID
    assert omni.queued == [r.data["response_id"]]
    polled = omni.response(r.data["response_id"])
    assert polled.status == 200
    assert polled.data == {
        "id": r.data["response_id"],
        "status": "queued",
        "thread_id": r.data["thread_id"],
        "user_message_id": r.data["user_message_id"],
        "content": {"parts": []},
    }
    h = omni.history(r.data["thread_id"])
    assert [(m["seq"], m["role"], m["outcome"], m["id"]) for m in h.data] == [
        (1, "USER", "completed", r.data["user_message_id"])
    ]
    assert h.data[0]["content"] == {"parts": [{"type": "text", "text": "Write a 10-word note"}]}


def test_a_finished_response_succeeds_and_its_assistant_message_joins_the_history(omni: Omni) -> None:
    r = omni.create_thread("Write a 10-word note").data
    assert omni.run() == ["completed"]
    final = omni.response(r["response_id"]).data
    assert final["status"] == "succeeded" and final["output_message_id"]
    assert len(final["content"]["parts"][0]["text"].split()) == 10
    msgs = omni.history(r["thread_id"]).data
    assert [(m["seq"], m["role"], m["outcome"]) for m in msgs] == [
        (1, "USER", "completed"),
        (2, "ASSISTANT", "completed"),
    ]
    assert msgs[1]["id"] == final["output_message_id"]
    assert msgs[1]["content"]["parts"] == final["content"]["parts"]
    assert omni.call("GET", f"/v1/omni-ai/threads/{r['thread_id']}/response", {"account_id": 1}).data is None


def _published(omni: Omni, rid: str, text: str) -> dict[str, Any] | None:
    """The response as polled, once its published text reached ``text``."""
    data = omni.response(rid).data
    parts = [p for p in data["content"]["parts"] if p["type"] == "text"]
    return data if parts and parts[0]["text"] == text else None


def test_a_running_response_shows_partial_parts_and_thinking_that_the_thread_message_never_shows(omni: Omni) -> None:
    r = omni.create_thread().data
    seen: dict[str, Any] = {}
    model = HookModel(
        4,
        thinking=["weighing ", "the question"],
        hooks={
            2: lambda: seen.setdefault("mid", eventually(lambda: _published(omni, r["response_id"], "w0 w1 "), "w0 w1"))
        },
    )
    omni.run(model)
    mid = seen["mid"]
    assert mid["status"] == "running" and "output_message_id" not in mid
    assert mid["content"]["parts"] == [
        {"type": "thinking", "thoughts": ["weighing the question"]},
        {"type": "text", "text": "w0 w1 "},
    ]
    final = omni.response(r["response_id"]).data
    assert final["content"]["parts"][0]["type"] == "thinking"
    msg = assistant(omni.history(r["thread_id"]))[0]
    assert msg["content"]["parts"] == [{"type": "text", "text": "w0 w1 w2 w3 "}]


def test_the_thread_response_endpoint_returns_the_active_response_and_null_when_idle(omni: Omni) -> None:
    r = omni.create_thread().data
    active = omni.call("GET", f"/v1/omni-ai/threads/{r['thread_id']}/response", {"account_id": 1})
    assert active.status == 200 and active.data["id"] == r["response_id"] and active.data["status"] == "queued"
    omni.run()
    idle = omni.call("GET", f"/v1/omni-ai/threads/{r['thread_id']}/response", {"account_id": 1})
    assert idle.status == 200 and idle.body == {"data": None, "metadata": {"request_id": REQUEST_ID}}


def test_a_second_message_while_a_response_is_active_is_409_without_retry_and_changes_nothing(omni: Omni) -> None:
    r = omni.create_thread().data
    before = omni.snapshot()
    busy = omni.send(r["thread_id"])
    assert busy.status == 409 and busy.headers["x-should-retry"] == "false"
    assert busy.body["error"]["code"] == 409 and busy.body["metadata"]["request_id"] == REQUEST_ID
    assert omni.snapshot() == before and omni.queued == [r["response_id"]]


def test_a_follow_up_after_the_response_ended_takes_the_next_two_seqs(omni: Omni) -> None:
    r = omni.create_thread().data
    omni.run()
    follow = omni.send(r["thread_id"], "Write a 3-word reply")
    assert follow.status == 201 and follow.data["thread_id"] == r["thread_id"]
    omni.run()
    msgs = omni.history(r["thread_id"]).data
    assert [(m["seq"], m["role"]) for m in msgs] == [(1, "USER"), (2, "ASSISTANT"), (3, "USER"), (4, "ASSISTANT")]
    assert len(msgs[3]["content"]["parts"][0]["text"].split()) == 3


def test_a_follow_up_is_accepted_right_after_a_queued_cancel_before_any_worker_ran(omni: Omni) -> None:
    r = omni.create_thread().data
    assert omni.cancel(r["response_id"]).data == {"canceled": True}
    follow = omni.send(r["thread_id"])
    assert follow.status == 201


def test_history_pages_go_from_latest_to_older_with_tokens(omni: Omni) -> None:
    r = omni.create_thread("Write a 2-word note").data
    omni.run()
    for _ in range(2):
        omni.send(r["thread_id"], "Write a 2-word note")
        omni.run()
    latest = omni.history(r["thread_id"], page_size=4)
    assert [m["seq"] for m in latest.data] == [3, 4, 5, 6]
    assert "previous_page_token" not in latest.body["metadata"]
    older = omni.history(r["thread_id"], page_token=latest.body["metadata"]["next_page_token"])
    assert [m["seq"] for m in older.data] == [1, 2] and "next_page_token" not in older.body["metadata"]
    newer = omni.history(r["thread_id"], page_token=older.body["metadata"]["previous_page_token"])
    assert [m["seq"] for m in newer.data] == [3, 4, 5, 6]
    bad = omni.history(r["thread_id"], page_token="not-a-token")
    assert bad.status == 400 and "page_token" in bad.body["error"]["message"]


def test_threads_are_listed_per_account_most_recently_active_first(omni: Omni) -> None:
    a = omni.create_thread("first thread").data
    omni.env.clock.advance(ms=5)
    b = omni.create_thread("second thread").data
    omni.env.clock.advance(ms=5)
    omni.create_thread("other account", account=2)
    omni.run()
    omni.env.clock.advance(ms=5)
    omni.send(a["thread_id"])  # moves thread a to the top
    page1 = omni.call("GET", "/v1/omni-ai/threads", {"account_id": 1, "page_size": 1})
    assert [t["id"] for t in page1.data] == [a["thread_id"]] and page1.data[0]["title"] == "first thread"
    page2 = omni.call(
        "GET",
        "/v1/omni-ai/threads",
        {"account_id": 1, "page_token": page1.body["metadata"]["next_page_token"], "page_size": 1},
    )
    assert [t["id"] for t in page2.data] == [b["thread_id"]]
    one = omni.call("GET", f"/v1/omni-ai/threads/{b['thread_id']}", {"account_id": 1})
    assert one.status == 200 and set(one.data) == {"id", "created_at", "title", "updated_at"}


# ---------------------------------------------------------------------------- cancel


def text_of(response: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in response["content"]["parts"] if p["type"] == "text")


def test_cancelling_a_running_response_ends_canceled_with_the_text_committed_when_it_was_accepted(
    omni: Omni,
) -> None:
    r = omni.create_thread("Write a 10-word note").data
    rid = r["response_id"]
    answers: list[Reply] = []
    reads: list[dict[str, Any]] = []

    def cancel_once_four_words_are_durable() -> None:
        eventually(lambda: text_of(omni.response(rid).data) == "w0 w1 w2 w3 ", "four durable words")
        answers.append(omni.cancel(rid))
        reads.append(omni.response(rid).data)  # read at once, before the keeper saw the flag

    # the model goes on writing after the cancel until the keeper sees the flag
    omni.run(HookModel(10, hooks={4: cancel_once_four_words_are_durable}))
    assert answers[0].status == 200 and answers[0].body == {
        "data": {"canceled": True},
        "metadata": {"request_id": REQUEST_ID},
    }
    # the read right after the answer said canceled, with what the response ends with
    final = omni.response(rid).data
    assert reads[0]["status"] == final["status"] == "canceled"
    assert reads[0]["content"] == final["content"] == {"parts": [{"type": "text", "text": "w0 w1 w2 w3 "}]}
    assert reads[0]["output_message_id"] == final["output_message_id"]
    msg = assistant(omni.history(r["thread_id"]))
    assert len(msg) == 1 and msg[0]["outcome"] == "canceled" and msg[0]["id"] == final["output_message_id"]
    assert msg[0]["content"]["parts"] == [{"type": "text", "text": "w0 w1 w2 w3 "}] and msg[0]["seq"] == 2
    again = omni.cancel(rid)
    assert again.status == 200 and again.data == {"canceled": True}


def test_a_second_cancel_while_the_first_propagates_also_says_canceled(omni: Omni) -> None:
    r = omni.create_thread().data
    answers: list[Any] = []
    omni.run(
        HookModel(
            6,
            hooks={2: lambda: answers.extend([omni.cancel(r["response_id"]).data, omni.cancel(r["response_id"]).data])},
        )
    )
    assert answers == [{"canceled": True}, {"canceled": True}]


def test_a_queued_cancel_shows_in_history_before_the_worker_runs_and_the_worker_writes_the_same_record(
    omni: Omni,
) -> None:
    r = omni.create_thread().data
    assert omni.cancel(r["response_id"]).data == {"canceled": True}
    polled = omni.response(r["response_id"]).data
    assert polled["status"] == "canceled" and polled["output_message_id"]
    derived = omni.history(r["thread_id"]).data
    assert [(m["role"], m["outcome"]) for m in derived] == [("USER", "completed"), ("ASSISTANT", "canceled")]
    assert derived[1]["content"] == {"parts": []} and derived[1]["id"] == polled["output_message_id"]
    assert omni.run() == ["cancelled"]
    assert omni.history(r["thread_id"]).data == derived
    assert omni.cancel(r["response_id"]).data == {"canceled": True}


def test_cancel_after_completion_is_an_idempotent_success_that_says_not_canceled(omni: Omni) -> None:
    r = omni.create_thread().data
    omni.run()
    before = omni.snapshot()
    for _ in range(2):
        again = omni.cancel(r["response_id"])
        assert again.status == 200 and again.data == {"canceled": False}
    assert omni.snapshot() == before
    assert omni.response(r["response_id"]).data["status"] == "succeeded"


def test_cancel_landing_after_the_last_word_but_before_completion_wins_and_says_so(omni: Omni) -> None:
    r = omni.create_thread().data
    answers: list[Any] = []

    def cancel_once_every_word_is_durable() -> None:
        eventually(lambda: text_of(omni.response(r["response_id"]).data) == "w0 w1 w2 w3 w4 ", "five durable words")
        answers.append(omni.cancel(r["response_id"]).data)

    omni.run(HookModel(5, hooks={5: cancel_once_every_word_is_durable}))
    assert answers == [{"canceled": True}]
    assert omni.response(r["response_id"]).data["status"] == "canceled"
    msg = assistant(omni.history(r["thread_id"]))[0]
    assert msg["outcome"] == "canceled" and msg["content"]["parts"][0]["text"] == "w0 w1 w2 w3 w4 "


def test_a_failed_response_reports_its_error_and_cancel_then_says_not_canceled(omni: Omni) -> None:
    r = omni.create_thread().data
    assert omni.run(HookModel(5, fail_at=2)) == ["failed"]
    final = omni.response(r["response_id"]).data
    assert final["status"] == "failed" and final["error"]["code"] == "model_error"
    msg = assistant(omni.history(r["thread_id"]))[0]
    assert msg["outcome"] == "errored" and msg["error"]["code"] == "model_error"
    assert omni.cancel(r["response_id"]).data == {"canceled": False}


def test_the_cancel_is_one_conditional_write_and_no_read(omni: Omni) -> None:
    r = omni.create_thread().data
    for expected in (True, True):
        omni.env.counter.reset()
        assert omni.cancel(r["response_id"]).data == {"canceled": expected}
        assert omni.env.counter.calls == ["UpdateItem"]
    omni.env.counter.reset()
    assert omni.cancel(r["response_id"], account=2).status == 404
    assert omni.env.counter.calls == ["UpdateItem"]


# ---------------------------------------------------------------------------- errors, exactly as the seed


ROUTES = [
    ("GET", "/v1/omni-ai/responses/{rid}"),
    ("DELETE", "/v1/omni-ai/responses/{rid}"),
    ("GET", "/v1/omni-ai/threads/{tid}"),
    ("GET", "/v1/omni-ai/threads/{tid}/messages"),
    ("GET", "/v1/omni-ai/threads/{tid}/response"),
    ("GET", "/v1/omni-ai/threads"),
]


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_a_missing_account_id_is_the_seeds_400(omni: Omni, method: str, route: str) -> None:
    r = omni.create_thread().data
    path = route.format(rid=r["response_id"], tid=r["thread_id"])
    before = omni.snapshot()
    out = omni.call(method, path)
    assert out.status == 400
    assert out.body == {"error": {"code": 400, "message": MISSING_ACCOUNT}, "metadata": {"request_id": REQUEST_ID}}
    for bad, why in (
        ("abc", "invalid digit"),
        ("", "empty string"),
        ("-1", "invalid digit"),
        ("1.5", "invalid digit"),
        ("99999999999999999999", "too large"),
    ):
        out = omni.call(method, path, {"account_id": bad})
        assert out.status == 400 and why in out.body["error"]["message"]
        assert out.body["error"]["message"].startswith("Failed to deserialize query string: account_id")
    assert omni.snapshot() == before


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_an_account_the_key_may_not_act_for_is_the_seeds_403(omni: Omni, method: str, route: str) -> None:
    r = omni.create_thread().data
    before = omni.snapshot()
    out = omni.call(method, route.format(rid=r["response_id"], tid=r["thread_id"]), {"account_id": 7})
    assert out.status == 403
    assert out.body == {"error": {"code": 403, "message": FORBIDDEN}, "metadata": {"request_id": REQUEST_ID}}
    assert omni.snapshot() == before


def test_unknown_malformed_foreign_account_and_foreign_tenant_responses_are_404_and_unchanged(omni: Omni) -> None:
    r = omni.create_thread().data
    omni.create_thread(account=9, tenant="other", accounts="9")
    before = omni.snapshot()
    cases = [
        ("00000000-0000-4000-8000-000000000000", 1, "dev", "1,2"),  # unknown
        ("not-a-uuid", 1, "dev", "1,2"),  # malformed
        (r["response_id"].upper(), 1, "dev", "1,2"),
        (r["response_id"], 2, "dev", "1,2"),  # another account of the same key
        (r["response_id"], 1, "intruder", "1"),  # another tenant
    ]
    for rid, account, tenant, accounts in cases:
        for out in (
            omni.cancel(rid, account, tenant=tenant, accounts=accounts),
            omni.response(rid, account, tenant=tenant, accounts=accounts),
        ):
            assert out.status == 404, (rid, account, tenant)
            assert out.body == {
                "error": {"code": 404, "message": "Response not found"},
                "metadata": {"request_id": REQUEST_ID},
            }
    assert omni.snapshot() == before
    assert omni.response(r["response_id"]).data["status"] == "queued"


def test_another_accounts_thread_is_404_for_reads_and_new_messages(omni: Omni) -> None:
    r = omni.create_thread().data
    omni.run()
    before = omni.snapshot()
    for out in (
        omni.send(r["thread_id"], account=2),
        omni.history(r["thread_id"], account=2),
        omni.call("GET", f"/v1/omni-ai/threads/{r['thread_id']}", {"account_id": 2}),
        omni.send(r["thread_id"], tenant="intruder", accounts="1"),
        omni.send("not-a-thread"),
        omni.send("00000000-0000-4000-8000-000000000000"),
    ):
        assert out.status == 404 and out.body["error"] == {"code": 404, "message": "Thread not found"}
    assert omni.snapshot() == before and omni.queued == []


def test_another_end_users_threads_and_responses_are_404_and_unlisted_while_the_tenant_sees_all(
    omni: Omni,
) -> None:
    alice, bob = {"x-on-behalf-of": "alice"}, {"x-on-behalf-of": "bob"}
    mine = omni.create_thread("alice's thread", headers=alice).data
    omni.env.clock.advance(ms=5)
    theirs = omni.create_thread("bob's thread", headers=bob).data
    omni.env.clock.advance(ms=5)
    omni.create_thread("bob's second", headers=bob)
    tid, rid = mine["thread_id"], mine["response_id"]
    before = omni.snapshot()
    for out in (
        omni.send(tid, headers=bob),
        omni.call("GET", f"/v1/omni-ai/threads/{tid}", {"account_id": 1}, headers=bob),
        omni.call("GET", f"/v1/omni-ai/threads/{tid}/messages", {"account_id": 1}, headers=bob),
        omni.call("GET", f"/v1/omni-ai/threads/{tid}/response", {"account_id": 1}, headers=bob),
    ):
        assert out.status == 404 and out.body["error"]["message"] == "Thread not found"
    for out in (omni.response(rid, headers=bob), omni.cancel(rid, headers=bob)):
        assert out.status == 404 and out.body["error"]["message"] == "Response not found"
    assert omni.snapshot() == before
    # Bob's listing holds only his threads, one per page, with a token while more may follow.
    page1 = omni.call("GET", "/v1/omni-ai/threads", {"account_id": 1, "page_size": 1}, headers=bob)
    token = page1.body["metadata"]["next_page_token"]
    page2 = omni.call("GET", "/v1/omni-ai/threads", {"account_id": 1, "page_size": 1, "page_token": token}, headers=bob)
    listed = [t["id"] for t in page1.data + page2.data]
    assert theirs["thread_id"] in listed and tid not in listed and len(listed) == 2
    everyone = omni.call("GET", "/v1/omni-ai/threads", {"account_id": 1, "page_size": 10})
    assert len(everyone.data) == 3  # the tenant's own call, without an end user, sees them all
    assert omni.response(rid).status == 200 and omni.response(rid, headers=alice).status == 200
    assert omni.cancel(rid, headers=alice).data == {"canceled": True}


def test_responses_and_threads_past_their_retention_answer_404(omni: Omni) -> None:
    r = omni.create_thread().data
    omni.run()
    omni.env.clock.advance(seconds=RESPONSE_RETENTION_S - 1)
    assert omni.response(r["response_id"]).status == 200
    assert omni.cancel(r["response_id"]).data == {"canceled": False}
    omni.env.clock.advance(seconds=1)
    assert omni.response(r["response_id"]).status == 404
    assert omni.cancel(r["response_id"]).body["error"]["message"] == "Response not found"
    assert omni.history(r["thread_id"]).status == 200  # the thread outlives its responses
    omni.env.clock.advance(seconds=THREAD_RETENTION_DAYS * 86_400)
    assert omni.history(r["thread_id"]).status == 404
    assert omni.send(r["thread_id"]).status == 404
    assert omni.call("GET", "/v1/omni-ai/threads", {"account_id": 1}).data == []


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("empty text", {"type": "instant", "account_id": 1, "text": ""}, "text"),
    ("blank text", {"type": "instant", "account_id": 1, "text": "   "}, "text"),
    ("missing text", {"type": "instant", "account_id": 1}, "text"),
    ("text of the wrong type", {"type": "instant", "account_id": 1, "text": 5}, "text"),
    ("account_id as a string", {"type": "instant", "account_id": "1", "text": "hi"}, "account_id"),
    ("account_id as a bool", {"type": "instant", "account_id": True, "text": "hi"}, "account_id"),
    ("null account_id", {"type": "instant", "account_id": None, "text": "hi"}, "account_id"),
    ("missing account_id", {"type": "instant", "text": "hi"}, "account_id"),
    ("missing type", {"account_id": 1, "text": "hi"}, "type"),
    ("unknown type", {"type": "weird", "account_id": 1, "text": "hi"}, "type"),
    ("unknown capability", {"type": "instant", "account_id": 1, "text": "hi", "capabilities": ["X"]}, "capabilities"),
    ("empty context", {"type": "instant", "account_id": 1, "text": "hi", "context": {"items": []}}, "context"),
    (
        "five context items",
        {
            "type": "instant",
            "account_id": 1,
            "text": "hi",
            "context": {"items": [{"data": {}, "kind": "k", "label": "l"}] * 5},
        },
        "context",
    ),
    (
        "blank context label",
        {
            "type": "instant",
            "account_id": 1,
            "text": "hi",
            "context": {"items": [{"data": {}, "kind": "k", "label": " "}]},
        },
        "label",
    ),
    (
        "oversized context",
        {
            "type": "instant",
            "account_id": 1,
            "text": "hi",
            "context": {"items": [{"data": {"blob": "x" * 66_000}, "kind": "k", "label": "l"}]},
        },
        "64 KiB",
    ),
    (
        "deep context",
        {
            "type": "instant",
            "account_id": 1,
            "text": "hi",
            "context": {"items": [{"data": json.loads('{"a":' * 33 + "1" + "}" * 33), "kind": "k", "label": "l"}]},
        },
        "nesting",
    ),
    ("a JSON array", [1, 2], "object"),
]


@pytest.mark.parametrize(("name", "body", "hint"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_create_bodies_are_a_clear_400_and_write_nothing(omni: Omni, name: str, body: Any, hint: str) -> None:
    before = omni.snapshot()
    out = omni.call("POST", "/v1/omni-ai/threads", body=body)
    assert out.status == 400, out.body
    assert out.body["error"]["code"] == 400 and hint in out.body["error"]["message"]
    assert out.body["error"]["message"].startswith("Failed to deserialize the JSON body")
    assert out.body["metadata"]["request_id"] == REQUEST_ID
    assert omni.snapshot() == before and omni.queued == []


def test_bad_message_bodies_malformed_json_and_oversized_bodies_write_nothing(omni: Omni) -> None:
    r = omni.create_thread().data
    omni.run()
    before = omni.snapshot()
    path = f"/v1/omni-ai/threads/{r['thread_id']}/messages"
    assert omni.call("POST", path, body={"text": "", "account_id": 1}).status == 400
    assert omni.call("POST", path, body={"account_id": 1}).status == 400
    assert omni.call("POST", path, raw="{not json").status == 400
    assert omni.call("POST", path, raw="").status == 400
    big = omni.call("POST", path, body={"text": "x" * 300_000, "account_id": 1})
    assert big.status == 413 and big.body["error"]["code"] == 413
    assert omni.call("POST", path, body={"text": "hi", "account_id": 7}).status == 403
    assert omni.snapshot() == before and omni.queued == []


def test_a_missing_key_is_401_in_the_seeds_shape(omni: Omni) -> None:
    out = omni.call("GET", "/v1/omni-ai/threads", {"account_id": 1}, tenant=None)
    assert out.status == 401 and out.body["error"]["code"] == 401 and out.body["metadata"]["request_id"]


def test_context_is_kept_on_the_user_message(omni: Omni) -> None:
    ctx = {
        "items": [
            {
                "data": {"px": "189.12"},
                "kind": "quote",
                "label": "AAPL quote",
                "captured_at": "2025-01-02T03:04:05+00:00",
            }
        ]
    }
    r = omni.call(
        "POST", "/v1/omni-ai/threads", body={"type": "instant", "account_id": 1, "text": "hi", "context": ctx}
    ).data
    msg = omni.history(r["thread_id"]).data[0]
    assert msg["context"] == ctx


def test_deep_insights_threads_take_a_ticker_target(omni: Omni) -> None:
    r = omni.call(
        "POST",
        "/v1/omni-ai/threads",
        body={
            "type": "deep_insights",
            "account_id": 1,
            "target": {"type": "ticker", "ticker": "AAPL"},
            "thesis": "Services growth",
        },
    )
    assert r.status == 201
    assert "AAPL" in omni.history(r.data["thread_id"]).data[0]["content"]["parts"][0]["text"]
    missing = omni.call("POST", "/v1/omni-ai/threads", body={"type": "deep_insights", "account_id": 1})
    assert missing.status == 400 and "target" in missing.body["error"]["message"]


def test_an_idempotency_key_replays_the_same_turn_and_rejects_another_body(omni: Omni) -> None:
    first = omni.create_thread("same", headers={"Idempotency-Key": "k1"})
    again = omni.create_thread("same", headers={"Idempotency-Key": "k1"})
    assert again.status == 201 and again.data == first.data
    other = omni.create_thread("different", headers={"Idempotency-Key": "k1"})
    assert other.status == 422 and other.body["error"]["code"] == 422


def test_concurrent_replays_of_a_stalled_queued_turn_send_its_message_once(
    omni: Omni, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replays of a turn still queued long after its creation re-send its message (the first
    attempt may have died before queueing it) — once, however many arrive together."""
    from concurrent.futures import ThreadPoolExecutor

    first = omni.create_thread("same", headers={"Idempotency-Key": "k-stalled"})
    sent: list[str] = []
    monkeypatch.setattr(omni.env.store.queue, "requeue", sent.append)
    omni.env.clock.advance(seconds=11)  # past the re-send threshold, the message looks lost
    with ThreadPoolExecutor(9) as pool:
        replies = list(
            pool.map(lambda _: omni.create_thread("same", headers={"Idempotency-Key": "k-stalled"}), range(9))
        )
    assert [r.status for r in replies] == [201] * 9
    assert all(r.data == first.data for r in replies)
    assert sent == [first.data["response_id"]]
    assert omni.queued == [first.data["response_id"]]  # the create's own message, not one per replay


def test_the_status_vocabulary_maps_every_internal_state() -> None:
    from turnstop.dialects.omni.renderer import MESSAGE_OUTCOME, WIRE_STATUS

    assert {s: WIRE_STATUS[s] for s in Status} == {
        Status.QUEUED: "queued",
        Status.RUNNING: "running",
        Status.COMPLETED: "succeeded",
        Status.FAILED: "failed",
        Status.INCOMPLETE: "failed",
        Status.CANCELLED: "canceled",
    }
    assert set(MESSAGE_OUTCOME.values()) == {"completed", "errored", "canceled"}


def test_a_forged_thread_page_token_is_a_400_not_a_backend_error(omni: Omni) -> None:
    import base64
    import json as _json

    omni.create_thread()
    for forged in ({"a": 1, "k": "", "id": ""}, {"a": 1, "k": "x", "id": "not-an-id"}, {"a": 1, "k": 5, "id": []}):
        token = base64.urlsafe_b64encode(_json.dumps(forged).encode()).decode().rstrip("=")
        out = omni.call("GET", "/v1/omni-ai/threads", query={"account_id": "1", "page_token": token})
        assert out.status == 400, forged


def test_a_lost_workers_cancelled_turn_keeps_the_text_committed_before_it_died(omni: Omni) -> None:
    from turnstop.core.events import Event
    from turnstop.dialects.omni.renderer import TEXT_DELTA

    r = omni.create_thread("Write a 40-word note").data
    rid = r["response_id"]
    claimed = omni.env.store.turns.claim(rid, "worker-a", LEASE_MS)  # worker A publishes two words, then dies
    two = [Event(2, TEXT_DELTA, {"delta": "alpha "}), Event(3, TEXT_DELTA, {"delta": "beta "})]
    omni.env.store.turns.publish(rid, "worker-a", two, claimed.seq, claimed.usage, LEASE_MS)
    assert omni.cancel(rid).data == {"canceled": True}
    omni.env.clock.advance(seconds=31)
    assert omni.run(owner="worker-b") == ["cancelled"]  # the redelivered message
    msg = assistant(omni.history(r["thread_id"]))[0]
    assert msg["outcome"] == "canceled" and msg["content"]["parts"] == [{"type": "text", "text": "alpha beta "}]


def test_an_answer_longer_than_one_item_can_hold_joins_the_history_whole(omni: Omni) -> None:
    r = omni.create_thread("Write a 90000-word essay").data  # about 540 KB of text
    assert omni.run() == ["completed"]
    msg = assistant(omni.history(r["thread_id"]))[0]
    assert msg["outcome"] == "completed" and len(msg["content"]["parts"][0]["text"].split()) == 90000


# ---------------------------------------------------------------- on DynamoDB Local only


@only_on_dynamodb_local
def test_cancels_racing_completion_end_in_one_outcome_and_every_answer_tells_who_won(env: Env) -> None:
    omni = Omni(env)
    outcomes = set()
    for _ in range(6):
        r = omni.create_thread("Write a 20-word note").data
        answers: list[bool] = []
        go = threading.Event()

        def canceller(rid: str = r["response_id"], go: threading.Event = go, answers: list[bool] = answers) -> None:
            go.wait()
            answers.append(omni.cancel(rid).data["canceled"])

        threads = [threading.Thread(target=canceller) for _ in range(4)]
        for t in threads:
            t.start()
        omni.run(HookModel(20, hooks={19: go.set}))
        for t in threads:
            t.join()
        final = omni.response(r["response_id"]).data
        assert final["status"] in ("succeeded", "canceled")
        won_by_cancel = final["status"] == "canceled"
        outcomes.add(final["status"])
        # every answer is the truth: true exactly when the response ended canceled
        assert answers == [won_by_cancel] * 4
        messages = [m for m in omni.history(r["thread_id"]).data if m["role"] == "ASSISTANT"]
        assert len(messages) == 1 and messages[0]["id"] == final["output_message_id"]
        assert messages[0]["outcome"] == ("canceled" if won_by_cancel else "completed")
        # and a later cancel still says the same
        assert omni.cancel(r["response_id"]).data == {"canceled": won_by_cancel}
    assert outcomes  # (which side wins varies run to run; each run is checked above)
