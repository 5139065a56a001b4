"""LLM dialect behaviour through its handlers, run on moto (unit) and DynamoDB Local (integration).

Requests are the sample events in events/ with the method, path, query, headers and body
changed; every answer is checked against both SDKs' own models (openai strict and mka1).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from mka1 import models as mka1_models
from mka1.utils.unmarshal_json_response import unmarshal_json_response
from openai._models import validate_type
from openai.types.responses import Response as OpenAIResponse
from openai.types.responses.response_stream_event import ResponseStreamEvent

from tests.cases.fixtures import Env, only_on_dynamodb_local
from tests.cases.turns import FAST, HookModel, eventually, until_ended
from turnstop.core.turn import Status
from turnstop.dialects.llm.answers import LlmResponse, LlmStreamEvent
from turnstop.dialects.llm.cancel import llm_cancel_app
from turnstop.dialects.llm.handlers import api_app
from turnstop.dialects.llm.renderer import RENDERERS
from turnstop.platform.settings import Settings
from turnstop.runtime.model import ScriptedModel
from turnstop.runtime.runner import TurnRunner
from turnstop.store import Store

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TENANT = "dev"
MODEL = "meetkai:functionary-urdu-mini-pak"
LEASE_MS = 30_000
# The seed's response object's keys, plus completed_at (the mka1 SDK requires it).
RESPONSE_KEYS = {
    "id",
    "object",
    "created_at",
    "status",
    "background",
    "completed_at",
    "error",
    "incomplete_details",
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "metadata",
    "model",
    "output",
    "output_text",
    "parallel_tool_calls",
    "previous_response_id",
    "reasoning",
    "service_tier",
    "store",
    "text",
    "tool_choice",
    "tools",
    "truncation",
    "usage",
    "user",
}


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, str]:  # noqa: N803 - boto3's names
        self.sent.append(json.loads(MessageBody)["turn_id"])
        return {"MessageId": str(len(self.sent))}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    chunks: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def events(self) -> list[dict[str, Any]]:
        return parse_sse(self.text)


def parse_sse(text: str) -> list[dict[str, Any]]:
    out = []
    for block in text.split("\n\n"):
        lines = [ln for ln in block.split("\n") if ln and not ln.startswith(":")]
        if not lines:
            continue
        fields = dict(ln.split(": ", 1) for ln in lines)
        assert set(fields) == {"event", "data"}, f"unexpected SSE fields {sorted(fields)}"
        data = json.loads(fields["data"])
        assert data["type"] == fields["event"]
        out.append(data)
    return out


def assert_sdk_response(obj: dict[str, Any]) -> None:
    """The object parses in openai (strict validation) and in mka1 (always strict), all keys present."""
    assert RESPONSE_KEYS <= set(obj), RESPONSE_KEYS - set(obj)
    LlmResponse.model_validate(obj)  # the answer's own model (the document's schema)
    validate_type(type_=OpenAIResponse, value=obj)
    res = httpx.Response(200, text=json.dumps(obj), request=httpx.Request("GET", "http://x"))
    parsed = unmarshal_json_response(mka1_models.ResponseObject, res)
    assert parsed.status == obj["status"]


def assert_sdk_event(ev: dict[str, Any]) -> None:
    """Typed in mka1 (no Unknown fallback); typed in openai strict except response.cancelled,
    which openai does not model (it parses in its default mode, see docs/llm.md)."""
    res = httpx.Response(
        200, text=json.dumps({"data": ev, "event": ev["type"]}), request=httpx.Request("GET", "http://x")
    )
    LlmStreamEvent.model_validate(ev)
    body = unmarshal_json_response(mka1_models.GetResponseResponseBody, res)
    assert not type(body.data).__name__.startswith("Unknown"), ev
    if ev["type"] != "response.cancelled":
        validate_type(type_=ResponseStreamEvent, value=ev)  # type: ignore[arg-type]
    if "response" in ev:
        assert_sdk_response(ev["response"])


class Llm:
    """Drives the llm handlers with payload-2.0 events, and runs the worker by hand."""

    def __init__(self, env: Env, **settings: Any) -> None:
        self.env = env
        self.sqs = FakeSqs()
        self.store = Store(env.store.table, clock=env.clock, queue_url="local-queue", dynamodb=env.client, sqs=self.sqs)
        self.settings = Settings(table=env.store.table, reader_poll_ms=1, keepalive_seconds=60, **settings)
        self.on_wait: Callable[[], object] | None = None
        self.fg_model: Any = None  # the model of turns that run in the request (foreground streams)
        self.fg_runner = TurnRunner(
            self.store,
            lambda t: self.fg_model or ScriptedModel(0),
            renderers=RENDERERS,
            lease_ms=LEASE_MS,
            owner="api",
            cadence=FAST,
        )
        self.api = api_app(self.store, self.settings, self.fg_runner, sleep=self._sleep)
        self.cancel_app = llm_cancel_app(self.store, self.settings)

    def _sleep(self, seconds: float) -> None:
        if self.on_wait:
            hook, self.on_wait = self.on_wait, None
            hook()
        self.env.clock.advance(ms=1)

    # ------------------------------------------------------------------ requests

    def event(
        self,
        name: str,
        method: str,
        path: str,
        *,
        body: str | None = None,
        query: dict[str, str] | None = None,
        tenant: str | None = TENANT,
        end_user: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        ev = copy.deepcopy(json.loads((EVENTS / name).read_text()))
        ev["rawPath"] = path
        ev["requestContext"]["http"]["method"] = method
        ev["requestContext"]["http"]["path"] = path
        ev["rawQueryString"] = urlencode(query or {})
        ev["queryStringParameters"] = dict(query) if query else None
        if tenant is None:
            ev["requestContext"]["authorizer"] = {"lambda": {"anonymous": "true"}}
        else:
            ev["requestContext"]["authorizer"]["lambda"]["tenant"] = tenant
        if end_user is not None:
            ev["headers"]["x-on-behalf-of"] = end_user
        ev["headers"].update(headers or {})
        ev["body"] = body
        return ev

    def _stream_call(self, ev: dict[str, Any], consume: bool = True) -> Answer:
        resp = self.api.stream(ev)
        chunks = list(resp.body) if consume else []
        return Answer(resp.status_code, resp.headers, "".join(chunks), chunks)

    def create(self, body: dict[str, Any] | str | None = None, *, consume: bool = True, **kw: Any) -> Answer:
        if body is None:
            body = {"model": MODEL, "input": "Write a 20-word note", "background": True}
        raw = body if isinstance(body, str) else json.dumps(body)
        return self._stream_call(self.event("llm_api.json", "POST", "/api/v1/llm/responses", body=raw, **kw), consume)

    def retrieve(self, rid: str, query: dict[str, str] | None = None, **kw: Any) -> Answer:
        return self._stream_call(
            self.event("llm_api_retrieve_stream.json", "GET", f"/api/v1/llm/responses/{rid}", query=query, **kw)
        )

    def cancel(self, rid: str, body: str | None = None, **kw: Any) -> Answer:
        ev = self.event("llm_cancel.json", "POST", f"/api/v1/llm/responses/{rid}/cancel", body=body, **kw)
        out = self.cancel_app.resolve(ev, None)
        return Answer(out["statusCode"], out.get("headers") or {}, out.get("body") or "")

    def start_bg(self, prompt: str = "Write a 20-word note", **extra: Any) -> str:
        a = self.create({"model": MODEL, "input": prompt, "background": True, **extra})
        assert a.status == 200, a.text
        return str(a.json["id"])

    # ------------------------------------------------------------------ worker

    def run(self, rid: str, model: Any = None) -> str:
        runner = TurnRunner(
            self.store,
            lambda t: model or ScriptedModel(0),
            renderers=RENDERERS,
            lease_ms=LEASE_MS,
            owner="worker-1",
            cadence=FAST,
        )
        return runner.handle(rid)

    def head(self, rid: str) -> Any:
        return self.store.turns.get(rid)

    def item_count(self) -> int:
        return int(self.env.client.scan(TableName=self.env.store.table, Select="COUNT")["Count"])


@pytest.fixture
def llm(env: Env) -> Iterator[Llm]:
    yield Llm(env)


# ====================================================================== create and retrieve


def test_given_background_create_when_answered_then_queued_object_with_every_field(llm: Llm) -> None:
    a = llm.create({"model": MODEL, "input": "Write a 5000-word essay", "background": True, "metadata": {"k": "v"}})
    assert a.status == 200 and a.headers["Content-Type"] == "application/json"
    obj = a.json
    assert_sdk_response(obj)
    assert obj["status"] == "queued" and obj["background"] is True and obj["output"] == []
    assert obj["metadata"] == {"k": "v"} and obj["model"] == MODEL
    assert obj["usage"]["input_tokens"] == 4 and obj["usage"]["output_tokens"] == 0
    # defaults as the seed's object shows them
    assert (obj["max_tool_calls"], obj["service_tier"], obj["truncation"], obj["tool_choice"]) == (
        30,
        "auto",
        "auto",
        "auto",
    )
    assert llm.sqs.sent == [obj["id"]]


def test_given_completed_response_when_retrieved_then_output_usage_and_billed_once(llm: Llm) -> None:
    rid = llm.start_bg("Write a 12-word note")
    assert llm.run(rid) == "completed"
    obj = llm.retrieve(rid).json
    assert_sdk_response(obj)
    assert obj["status"] == "completed" and obj["completed_at"] is not None
    assert len(obj["output_text"].split()) == 12
    assert obj["output"][0]["content"][0]["text"] == obj["output_text"]
    assert obj["usage"]["output_tokens"] == 12
    ledger = llm.store.ledger.entries(TENANT, rid)
    assert sorted(e["kind"] for e in ledger) == ["debit", "usage"]
    assert llm.run(rid) == "already_final"
    assert len(llm.store.ledger.entries(TENANT, rid)) == 2


def test_given_message_items_when_created_then_prompt_is_their_text(llm: Llm) -> None:
    items = [
        {"role": "system", "content": "Be brief."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Write a 3-word note"}]},
    ]
    rid = llm.start_bg(items)  # type: ignore[arg-type]
    llm.run(rid)
    assert len(llm.retrieve(rid).json["output_text"].split()) == 3


def test_given_foreground_json_create_when_worker_finishes_then_final_object_returned(llm: Llm) -> None:
    llm.on_wait = lambda: llm.run(llm.sqs.sent[-1])
    a = llm.create({"model": MODEL, "input": "Write a 4-word note"})
    assert a.status == 200
    assert a.json["status"] == "completed" and a.json["background"] is False
    assert_sdk_response(a.json)


def test_given_stream_create_when_consumed_then_standard_events_in_order_with_sequence_numbers(llm: Llm) -> None:
    body = json.dumps({"model": MODEL, "input": "Write a 3-word note", "stream": True})
    resp = llm.api.stream(llm.event("llm_api.json", "POST", "/api/v1/llm/responses", body=body))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert llm.sqs.sent == []  # a foreground stream runs in the request that asked for it
    text = "".join(resp.body)
    assert "id:" not in text and "[DONE]" not in text
    evs = parse_sse(text)
    types = [e["type"] for e in evs]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in evs] == list(range(1, len(evs) + 1))
    assert {e["item_id"] for e in evs if "item_id" in e} == {evs[2]["item"]["id"]}
    for e in evs:
        assert_sdk_event(e)
    assert evs[-1]["response"]["output_text"] == "".join(
        e["delta"] for e in evs if e["type"] == "response.output_text.delta"
    )


def test_given_finished_response_when_streamed_starting_after_n_then_only_later_events(llm: Llm) -> None:
    rid = llm.start_bg("Write a 5-word note")
    llm.run(rid)
    full = llm.retrieve(rid, {"stream": "true"}).events
    later = llm.retrieve(rid, {"stream": "true", "starting_after": "4"}).events
    assert [e["sequence_number"] for e in later] == [e["sequence_number"] for e in full if e["sequence_number"] > 4]
    assert later == full[4:]
    last = llm.retrieve(rid, {"stream": "true", "starting_after": str(full[-1]["sequence_number"])})
    assert last.status == 200 and last.events == []


# ====================================================================== cancel


def test_given_queued_background_response_when_cancelled_then_cancelled_object_in_one_write(llm: Llm) -> None:
    rid = llm.start_bg("Write a 5000-word essay")
    llm.env.counter.reset()
    a = llm.cancel(rid)
    # one write decides, with no read before it; the request is read after, to render the answer
    assert llm.env.counter.calls == ["UpdateItem", "GetItem"]
    assert a.status == 200
    obj = a.json
    assert_sdk_response(obj)
    assert obj["status"] == "cancelled" and obj["output"] == [] and obj["usage"]["output_tokens"] == 0
    assert llm.retrieve(rid).json["status"] == "cancelled"
    # the worker that later gets the message drops it and records the terminal event
    assert llm.run(rid) == "cancelled"
    evs = llm.retrieve(rid, {"stream": "true"}).events
    assert [e["type"] for e in evs] == ["response.created", "response.cancelled"]
    assert [e["kind"] for e in llm.store.ledger.entries(TENANT, rid)] == ["usage"]


def test_given_running_response_when_cancelled_then_output_so_far_and_stream_ends_cancelled(llm: Llm) -> None:
    rid = llm.start_bg("Write a 5000-word essay")
    answers: list[Answer] = []

    def cancel_twice() -> None:  # once ten words are published: cancelling, then again
        eventually(lambda: llm.head(rid).seq >= 4 + 10, "ten words published")
        answers.extend([llm.cancel(rid), llm.cancel(rid)])

    model = HookModel(50, {10: cancel_twice})
    assert llm.run(rid, model) == "cancelled"
    first, second = answers
    assert first.status == second.status == 200
    assert first.json["status"] == "cancelled"
    assert first.json["output_text"] == "".join(f"w{i} " for i in range(10))
    assert first.json["output"][0]["status"] == "incomplete"
    assert second.json == first.json, {
        k: (first.json[k], second.json.get(k)) for k in first.json if first.json[k] != second.json.get(k)
    }
    final = llm.retrieve(rid).json
    assert_sdk_response(final)
    assert final["status"] == "cancelled" and final["output_text"] == first.json["output_text"]
    assert final["usage"] == first.json["usage"] and final["usage"]["output_tokens"] == 10
    evs = llm.retrieve(rid, {"stream": "true", "starting_after": "3"}).events
    assert evs[-1]["type"] == "response.cancelled" and evs[-1]["response"]["status"] == "cancelled"
    for e in evs:
        assert_sdk_event(e)
    usage = llm.store.ledger.entries(TENANT, rid)
    assert [e["kind"] for e in usage] == ["usage"] and usage[0]["billed"] is False
    assert llm.cancel(rid).json == final  # cancelling a cancelled response again: the final object


def test_given_completed_response_when_cancelled_then_unchanged_completed_object(llm: Llm) -> None:
    rid = llm.start_bg("Write a 6-word note")
    llm.run(rid)
    before = llm.retrieve(rid).json
    a = llm.cancel(rid)
    assert a.status == 200 and a.json == before and a.json["status"] == "completed"
    assert llm.head(rid).cancel_requested_at is None


def test_given_foreground_response_when_cancelled_then_400_and_nothing_changed(llm: Llm) -> None:
    gate = threading.Event()
    llm.fg_model = HookModel(9, hooks={4: lambda: gate.wait(10)})  # it runs in the request, held mid-way
    a = llm.create({"model": MODEL, "input": "Write a 9-word note", "stream": True}, consume=False)
    assert a.status == 200
    rid = a.headers["X-Response-Id"]
    c = llm.cancel(rid)
    assert c.status == 400
    assert c.json["error"]["code"] == "response_not_cancellable" and c.json["error"]["type"] == "invalid_request_error"
    assert "background" in c.json["error"]["message"]
    assert llm.head(rid).cancel_requested_at is None
    gate.set()
    until_ended(llm.env, rid)
    assert llm.head(rid).status.value == "completed"


# ====================================================================== X-On-Behalf-Of and tenancy


def test_given_end_user_response_when_other_end_user_reads_or_cancels_then_404_and_unchanged(llm: Llm) -> None:
    a = llm.create({"model": MODEL, "input": "Write a 30-word note", "background": True}, end_user="user-a")
    rid = a.json["id"]
    assert llm.retrieve(rid, end_user="user-b").status == 404
    assert llm.retrieve(rid, {"stream": "true"}, end_user="user-b").status == 404
    assert llm.cancel(rid, end_user="user-b").status == 404
    assert llm.retrieve(rid, tenant="other").status == 404
    assert llm.cancel(rid, tenant="other").status == 404
    assert llm.head(rid).cancel_requested_at is None
    assert llm.retrieve(rid, end_user="user-a").status == 200
    assert llm.retrieve(rid).status == 200  # the tenant's service-level call
    c = llm.cancel(rid, end_user="user-a")
    assert c.status == 200 and c.json["status"] == "cancelled"


def test_given_service_level_response_when_end_user_cancels_then_404(llm: Llm) -> None:
    rid = llm.start_bg()
    assert llm.cancel(rid, end_user="user-a").status == 404
    assert llm.cancel(rid).json["status"] == "cancelled"


# ====================================================================== bad input


def _err(a: Answer, status: int, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    assert a.status == status, a.text
    assert a.headers["Content-Type"] == "application/json"
    body = a.json
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    if param is not None:
        assert body["error"]["param"] == param
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


@pytest.mark.parametrize("rid", ["not-a-response", "resp_", "resp_abc!x", "resp__x", "msg_123", "x" * 200])
def test_given_malformed_id_when_retrieved_or_cancelled_then_400(llm: Llm, rid: str) -> None:
    _err(llm.retrieve(rid), 400, "response_id")
    _err(llm.cancel(rid), 400, "response_id")


@pytest.mark.parametrize("rid", ["resp_unknown123", "resp-unknown123"])
def test_given_unknown_id_when_retrieved_or_cancelled_then_404(llm: Llm, rid: str) -> None:
    _err(llm.retrieve(rid), 404, code="not_found")
    _err(llm.cancel(rid), 404, code="not_found")
    assert llm.item_count() == 0


BAD_BODIES: list[tuple[Any, str | None]] = [
    ({"model": "gpt-unknown", "input": "hi"}, "model"),
    ({"input": "hi"}, "model"),
    ({"model": MODEL}, "input"),
    ({"model": MODEL, "input": 42}, "input"),
    ({"model": MODEL, "input": {"role": "user"}}, "input"),
    ({"model": MODEL, "input": [{"role": "user", "content": 5}]}, "input"),
    ({"model": MODEL, "input": [{"role": "wizard", "content": "hi"}]}, "input"),
    ({"model": MODEL, "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input"),
    ({"model": MODEL, "input": "   "}, "input"),
    ({"model": MODEL, "input": "hi", "background": "yes"}, "background"),
    ({"model": MODEL, "input": "hi", "stream": 1}, "stream"),
    ({"model": MODEL, "input": "hi", "metadata": {"k": 1}}, "metadata"),
    ({"model": MODEL, "input": "hi", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ({"model": MODEL, "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": MODEL, "input": "hi", "tools": [{"type": "function", "name": "f"}]}, "tools"),
    ({"model": MODEL, "input": "hi", "background": True, "store": False}, "store"),
    ({"model": MODEL, "input": "hi", "previous_response_id": "resp_missing1"}, "previous_response_id"),
    ({"model": MODEL, "input": "hi", "previous_response_id": "bad id"}, "previous_response_id"),
    ("{not json", None),
    ("[1, 2]", None),
    ("", None),
]


@pytest.mark.parametrize(("body", "param"), BAD_BODIES)
def test_given_bad_create_body_when_posted_then_400_in_openai_shape_and_nothing_written(
    llm: Llm, body: Any, param: str | None
) -> None:
    err = _err(llm.create(body), 400, param)
    assert err["type"] == "invalid_request_error"
    assert llm.item_count() == 0 and llm.sqs.sent == []


def test_given_unknown_model_then_code_model_not_found(llm: Llm) -> None:
    _err(llm.create({"model": "gpt-unknown", "input": "hi"}), 400, "model", "model_not_found")


def test_given_body_over_limit_when_posted_then_413_and_nothing_written(env: Env) -> None:
    llm = Llm(env, max_body_bytes=1024)
    big = json.dumps({"model": MODEL, "input": "x" * 2000, "background": True})
    _err(llm.create(big), 413, code="request_too_large")
    rid = llm.start_bg()
    _err(llm.cancel(rid, body="{" + " " * 2000 + "}"), 413)
    assert llm.head(rid).cancel_requested_at is None


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"starting_after": "-1"}, "negative"),
        ({"starting_after": "abc"}, "integer"),
        ({"starting_after": "999"}, "beyond"),
        ({"stream": "maybe"}, "stream"),
    ],
)
def test_given_bad_stream_query_when_retrieved_then_400(llm: Llm, query: dict[str, str], fragment: str) -> None:
    rid = llm.start_bg()
    err = _err(llm.retrieve(rid, {"stream": "true", **query}), 400)
    assert fragment in err["message"]


def test_given_missing_or_invalid_key_then_401_and_nothing_changed(llm: Llm) -> None:
    rid = llm.start_bg()
    # no authorizer context: the streaming function checks the key itself
    for headers in ({"authorization": "Bearer nope"}, {"authorization": ""}):
        ev = llm.event(
            "llm_api.json",
            "POST",
            "/api/v1/llm/responses",
            body=json.dumps({"model": MODEL, "input": "hi"}),
            headers=headers,
        )
        del ev["requestContext"]["authorizer"]
        a = llm._stream_call(ev)
        _err(a, 401, code="invalid_api_key")
        ev = llm.event("llm_api_retrieve_stream.json", "GET", f"/api/v1/llm/responses/{rid}", headers=headers)
        del ev["requestContext"]["authorizer"]
        _err(llm._stream_call(ev), 401)
    _err(llm.cancel(rid, tenant=None), 401, code="invalid_api_key")
    assert llm.head(rid).cancel_requested_at is None
    assert llm.sqs.sent == [rid]


# ====================================================================== retention


def test_given_response_past_retention_when_retrieved_or_cancelled_then_404(env: Env) -> None:
    llm = Llm(env, llm_retention_seconds=60)
    rid = llm.start_bg("Write a 3-word note")
    llm.run(rid)
    env.clock.advance(seconds=59)
    assert llm.retrieve(rid).status == 200
    env.clock.advance(seconds=2)
    _err(llm.retrieve(rid), 404)
    _err(llm.retrieve(rid, {"stream": "true"}), 404)
    _err(llm.cancel(rid), 404)


def test_given_store_false_foreground_response_when_retrieved_then_404(llm: Llm) -> None:
    llm.on_wait = lambda: llm.run(llm.sqs.sent[-1])
    a = llm.create({"model": MODEL, "input": "Write a 2-word note", "store": False})
    assert a.json["status"] == "completed" and a.json["store"] is False
    _err(llm.retrieve(a.json["id"]), 404)


def test_given_previous_response_when_referenced_then_echoed(llm: Llm) -> None:
    first = llm.start_bg()
    a = llm.create({"model": MODEL, "input": "hi", "background": True, "previous_response_id": first})
    assert a.json["previous_response_id"] == first


def test_given_mka1_defaults_in_body_when_created_then_accepted_and_echoed(llm: Llm) -> None:
    body = {
        "model": MODEL,
        "input": "Say hello",
        "stream": False,
        "store": True,
        "background": True,
        "parallel_tool_calls": True,
        "max_tool_calls": 64,
        "truncation": "auto",
        "service_tier": "auto",
    }
    obj = llm.create(body).json
    assert obj["max_tool_calls"] == 64 and obj["truncation"] == "auto" and obj["service_tier"] == "auto"
    assert_sdk_response(obj)


def test_given_failed_model_when_retrieved_then_failed_with_server_error(llm: Llm) -> None:
    rid = llm.start_bg()
    assert llm.run(rid, HookModel(5, fail_at=3)) == "failed"
    obj = llm.retrieve(rid).json
    assert_sdk_response(obj)
    assert obj["status"] == "failed" and obj["error"]["code"] == "server_error"
    evs = llm.retrieve(rid, {"stream": "true"}).events
    assert evs[-1]["type"] == "response.failed"
    assert llm.cancel(rid).json["status"] == "failed"
    assert Status.FAILED is llm.head(rid).status


def test_given_max_output_tokens_when_reached_then_incomplete_with_that_reason_and_billed(llm: Llm) -> None:
    obj = llm.create({"model": MODEL, "input": "Write a 40-word note", "background": True, "max_output_tokens": 6}).json
    assert llm.run(obj["id"]) == "incomplete"
    final = llm.retrieve(obj["id"]).json
    assert_sdk_response(final)
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["error"] is None  # as OpenAI: the reason is in incomplete_details, not an error
    assert final["usage"]["output_tokens"] == 6 and len(final["output_text"].split()) == 6
    events = llm.retrieve(obj["id"], {"stream": "true"}).events
    assert events[-1]["type"] == "response.incomplete"
    assert sorted(e["kind"] for e in llm.store.ledger.entries(TENANT, obj["id"])) == ["debit", "usage"]


def test_given_an_answer_longer_than_one_item_can_hold_when_it_finishes_then_it_is_read_whole(llm: Llm) -> None:
    rid = llm.start_bg("Write a 40000-word essay")  # the response object repeats the text five times
    assert llm.run(rid) == "completed"
    final = llm.retrieve(rid).json
    assert final["status"] == "completed" and len(final["output_text"].split()) == 40000
    assert final["output"][0]["content"][0]["text"] == final["output_text"]
    evs = llm.retrieve(rid, {"stream": "true", "starting_after": str(40000)}).events  # the closing events alone
    assert [e["type"] for e in evs][-1] == "response.completed"
    assert evs[-1]["response"]["output_text"] == final["output_text"]


# ---------------------------------------------------------------- on DynamoDB Local only


@only_on_dynamodb_local
def test_given_cancels_racing_a_running_worker_then_answer_and_final_object_agree(env: Env) -> None:
    llm = Llm(env)
    for words in (1, 3, 8, 20):
        rid = llm.start_bg(f"Write a {words}-word note")
        runner = TurnRunner(
            llm.store, lambda t: ScriptedModel(1), renderers=RENDERERS, lease_ms=30_000, owner="race-worker"
        )
        result: list[str] = []
        worker = threading.Thread(target=lambda r=runner, out=result, i=rid: out.append(r.handle(i)))
        worker.start()
        answers = [llm.cancel(rid) for _ in range(3)]
        worker.join(timeout=60)
        final = llm.retrieve(rid).json
        assert_sdk_response(final)
        assert all(a.status == 200 for a in answers)
        # whoever won, the final object is what the last cancel answered, and a cancel that
        # was accepted always ends cancelled with exactly the output it reported
        assert answers[-1].json == final
        if answers[0].json["status"] == "cancelled":
            assert final["status"] == "cancelled"
            assert final["output_text"] == answers[0].json["output_text"]
            assert [e["kind"] for e in llm.store.ledger.entries("dev", rid)] == ["usage"]
        else:
            assert final["status"] == "completed" and result == ["completed"]
