"""The chat dialect through its resolvers (the routes its functions serve), run on moto (unit)
and on DynamoDB Local (integration): the seed's workflow, confirm and cancel, streaming, the
cookie API's security (sessions, CSRF, CORS, the rate limit), store failures and bad input.
Replies run in-process under a runner; sessions are created in the store (the OAuth sign-in
that creates them is in chat_signin_cases)."""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cases.fixtures import Env, only_on_dynamodb_local
from tests.cases.replies import HttpReply
from tests.cases.turns import eventually
from turnstop.core import scopes
from turnstop.core.records import NewTurn
from turnstop.core.signin import WebSession, secret_hash
from turnstop.core.turn import CancelOutcome, CancelRequest, Status
from turnstop.dialects.chat.agent import AgentModel
from turnstop.dialects.chat.cancel import chat_cancel_app
from turnstop.dialects.chat.handlers import api_app, stream_app
from turnstop.dialects.chat.renderer import RENDERERS, action_planned, after_finish
from turnstop.platform.settings import Settings
from turnstop.providers.base import Chunk
from turnstop.runtime.keeper import Cadence
from turnstop.runtime.model import Model
from turnstop.runtime.runner import TurnRunner
from turnstop.store import Store

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TENANT = "dev"
MEETING = "Schedule a meeting titled 'Project Review' on March 10th at 3 PM"
QUESTION = "Should I create a meeting titled 'Project Review' on March 10th at 3 PM?"
LONG = "Write a 5000-word essay on stop buttons"
ALLOWED = "http://localhost:5173"
EVENT_OF = {
    "/chat": "chat_api",
    "/chat/confirm": "chat_api_confirm",
    "/chat/stream": "chat_stream",
    "/chat/cancel": "chat_cancel",
}


class Reply(HttpReply):
    @property
    def error(self) -> dict[str, str]:
        """The seed's error shape, exactly: ``{"error": <code>, "message": ...}``."""
        body = self.json
        assert set(body) == {"error", "message"} and all(isinstance(v, str) for v in body.values()), body
        return dict(body)


@dataclass
class Streamed:
    status: int
    headers: dict[str, str]
    frames: list[str] = field(default_factory=list)

    @property
    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """(event name, data payload) per frame; each frame is exactly ``event:`` + ``data:``."""
        out = []
        for frame in self.frames:
            name_line, data_line = frame.rstrip("\n").split("\n")
            name = name_line.removeprefix("event: ")
            payload = json.loads(data_line.removeprefix("data: "))
            assert set(payload) == {"event_type", "data"} and payload["event_type"] == name, frame
            out.append((name, payload["data"]))
        return out

    @property
    def text(self) -> str:
        return "".join(d["text"] for n, d in self.events if n == "token")


class Faults:
    """A DynamoDB client that fails the calls ``rule`` picks the way DynamoDB fails them."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.rule: Callable[[str, dict[str, Any]], str | None] = lambda op, kw: None
        self.before: Callable[[str, dict[str, Any]], None] = lambda op, kw: None  # told of every call

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.client, name)
        if name.startswith("_") or name in ("meta", "exceptions") or not callable(real):
            return real

        def call(**kw: Any) -> Any:
            self.before(name, kw)
            code = self.rule(name, kw)
            if code:
                raise ClientError({"Error": {"Code": code, "Message": "injected fault"}}, name)
            return real(**kw)

        return call


def touches_a_turn(op: str, kw: dict[str, Any]) -> bool:
    """A write on a turn head: the cancel's UpdateItem, or a transaction of them."""
    if op == "transact_write_items":
        return True
    return op == "update_item" and kw["Key"]["pk"]["S"].startswith("TURN#")


class Words:
    """``n`` words a step apart, whatever the message asks (a long reply to a planned action)."""

    def __init__(self, n: int, step_s: float) -> None:
        self.n, self.step_s = n, step_s

    def stream(self, prompt: str) -> Iterator[Chunk]:
        for i in range(self.n):
            if i:
                time.sleep(self.step_s)  # the model's pace, not a test's wait
            yield Chunk("w ")


def failing(code: str, when: Callable[[str, dict[str, Any]], bool]) -> Callable[[str, dict[str, Any]], str | None]:
    """A fault rule: calls ``when`` picks fail with ``code``."""
    return lambda op, kw: code if when(op, kw) else None


class ChatApi:
    def __init__(self, env: Env, step_ms: int = 0, model: Model | None = None, **settings: Any) -> None:
        self.env = env
        self.faults = Faults(env.client)
        self.store = Store(env.store.table, clock=env.clock, dynamodb=self.faults)
        self.settings = Settings(
            table=env.store.table,
            chat_tenant=TENANT,
            allowed_origins="http://localhost:*",
            flush_ms=20,
            cancel_check_ms=5,
            scripted_step_ms=step_ms,
            **settings,
        )
        self.runner = TurnRunner(
            self.store,
            lambda turn: model or AgentModel(step_ms),
            renderers=RENDERERS,
            lease_ms=30_000,
            cadence=Cadence.from_settings(self.settings),
            on_finished=after_finish(self.store),
        )
        self.api = api_app(self.store, self.settings, self.runner)
        self.streams = stream_app(self.store, self.settings, self.runner)
        self.canceller = chat_cancel_app(self.store, self.settings)

    # -- sessions

    def sign_in(self, user: str = "alice", *, idle_s: int = 3600, max_s: int = 86_400) -> str:
        """A signed-in session (what /auth/callback creates); returns its cookie's value."""
        value = secrets.token_urlsafe(32)
        now = self.store.now()
        self.store.signins.create_session(
            WebSession(secret_hash(value), TENANT, user, user, now, now + max_s * 1000, now + idle_s * 1000, now)
        )
        return value

    # -- HTTP

    def event(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: str | None = None,
        session: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        name = "chat_api_thread" if path.startswith("/chat/threads/") else EVENT_OF.get(path, "chat_api")
        ev = copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))
        ev["rawPath"] = path
        ev["requestContext"]["http"].update(method=method, path=path)
        ev["cookies"] = [f"session_id={session}"] if session is not None else []
        ev["headers"].update(headers or {})
        ev["body"] = raw if raw is not None else (None if body is None else json.dumps(body))
        return ev

    def call(self, method: str, path: str, **kw: Any) -> Reply:
        # preflights of every /chat path are the API function's (its OPTIONS /chat/{proxy+} route)
        app = self.api if method == "OPTIONS" else self.canceller if path == "/chat/cancel" else self.api
        if method != "OPTIONS" and path == "/chat/stream":
            app = self.streams
        out = app.resolve(self.event(method, path, **kw), None)
        headers = {k.lower(): str(v) for k, v in (out.get("headers") or {}).items()}
        return Reply(int(out["statusCode"]), headers, out.get("body") or "")

    def stream(
        self, session: str, message: str, thread_id: str | None = None, seen: Callable[[Streamed], None] | None = None
    ) -> Streamed:
        """POST /chat/stream, reading every frame (``seen`` is told after each)."""
        body: dict[str, Any] = {"message": message}
        if thread_id is not None:
            body["thread_id"] = thread_id
        answer = self.streams.stream(self.event("POST", "/chat/stream", body=body, session=session))
        out = Streamed(answer.status_code, {k.lower(): v for k, v in answer.headers.items()})
        for chunk in answer.body:
            out.frames.append(chunk if isinstance(chunk, str) else chunk.decode())
            if seen is not None:
                seen(out)
        return out

    def send(self, session: str, message: str, thread_id: str | None = None) -> Reply:
        body = {"message": message, **({"thread_id": thread_id} if thread_id else {})}
        return self.call("POST", "/chat", body=body, session=session)

    def cancel(self, session: str, thread_id: Any, **kw: Any) -> Reply:
        return self.call("POST", "/chat/cancel", body={"thread_id": thread_id}, session=session, **kw)

    def confirm(self, session: str, thread_id: str) -> Reply:
        return self.call("POST", "/chat/confirm", body={"thread_id": thread_id}, session=session)

    def thread(self, session: str, thread_id: str) -> Reply:
        return self.call("GET", f"/chat/threads/{thread_id}", session=session)

    def snapshot(self, but: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        items = self.env.client.scan(TableName=self.env.store.table, ConsistentRead=True)["Items"]
        kept = [i for i in items if not i["pk"]["S"].startswith(but)] if but else items
        return sorted(kept, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


@pytest.fixture
def chat(env: Env) -> ChatApi:
    return ChatApi(env)


def planned(chat: ChatApi, session: str) -> str:
    """A thread whose agent asked the seed's question; its thread id."""
    r = chat.send(session, MEETING)
    assert r.status == 200 and r.json["requires_confirmation"], r.text
    return str(r.json["thread_id"])


def cancelled_answer(thread_id: str) -> dict[str, Any]:
    return {"thread_id": thread_id, "status": "cancelled", "response": "Action cancelled.", "cancelled": True}


# ---------------------------------------------------------------------------- the seed's workflow


def test_the_seeds_workflow_asks_cancels_never_executes_and_the_thread_goes_on(chat: ChatApi) -> None:
    alice = chat.sign_in()
    # Given the agent asks for confirmation
    asked = chat.send(alice, MEETING)
    thread_id = asked.json["thread_id"]
    assert asked.status == 200 and asked.json == {
        "response": "I can schedule that meeting for you.",
        "thread_id": thread_id,
        "requires_confirmation": True,
        "confirmation_message": QUESTION,
    }
    assert thread_id.startswith("thread_") and asked.headers["x-thread-id"] == thread_id
    # When the user cancels
    r = chat.cancel(alice, thread_id)
    # Then the seed's answer, exactly, and again for a repeat
    assert (r.status, r.json) == (200, cancelled_answer(thread_id))
    again = chat.cancel(alice, thread_id)
    assert (again.status, again.json) == (200, cancelled_answer(thread_id))
    # and the action is cancelled and can never execute
    no = chat.confirm(alice, thread_id)
    assert no.status == 409 and no.error["error"] == "nothing_to_confirm"
    view = chat.thread(alice, thread_id).json
    (action,) = view["actions"]
    assert action["status"] == "cancelled" and action["type"] == "create_meeting" and action["decided_at"]
    assert action["summary"] == "Create a meeting titled 'Project Review' on March 10th at 3 PM"
    assert [m["role"] for m in view["messages"]] == ["user", "assistant"]
    # and the conversation goes on in the same thread
    more = chat.send(alice, "Write a 6-word note instead", thread_id)
    assert more.status == 200 and more.json["thread_id"] == thread_id
    assert more.json["requires_confirmation"] is False and "confirmation_message" not in more.json
    assert len(more.json["response"].split()) == 6
    view = chat.thread(alice, thread_id).json
    assert [(m["role"], m["content"]) for m in view["messages"]][2:] == [
        ("user", "Write a 6-word note instead"),
        ("assistant", more.json["response"]),
    ]
    assert [a["status"] for a in view["actions"]] == ["cancelled"]
    # and with nothing in flight any more, a cancel has nothing to cancel
    r = chat.cancel(alice, thread_id)
    assert r.status == 409 and r.error["error"] == "nothing_to_cancel"


def test_confirm_executes_the_action_once_and_a_cancel_after_it_changes_nothing(chat: ChatApi) -> None:
    alice = chat.sign_in()
    thread_id = planned(chat, alice)
    r = chat.confirm(alice, thread_id)
    assert (r.status, r.json) == (
        200,
        {
            "thread_id": thread_id,
            "status": "confirmed",
            "confirmed": True,
            "response": "Created a meeting titled 'Project Review' on March 10th at 3 PM.",
        },
    )
    before = chat.snapshot(but=("RATE#",))
    late = chat.cancel(alice, thread_id)
    assert late.status == 409 and late.error["error"] == "nothing_to_cancel"
    assert chat.snapshot(but=("RATE#",)) == before
    twice = chat.confirm(alice, thread_id)
    assert twice.status == 409 and twice.error == {
        "error": "nothing_to_confirm",
        "message": "Nothing to confirm: the action was already confirmed",
    }
    view = chat.thread(alice, thread_id).json
    assert [a["status"] for a in view["actions"]] == ["executed"]
    assert view["messages"][-1]["content"] == r.json["response"]


def test_the_agent_plans_an_email_too_and_answers_anything_else_by_word_count(chat: ChatApi) -> None:
    alice = chat.sign_in()
    r = chat.send(alice, "Please send an email to Dana about the Q3 report.")
    assert r.json["requires_confirmation"] and r.json["confirmation_message"] == (
        "Should I send an email to Dana about the Q3 report?"
    )
    assert chat.confirm(alice, r.json["thread_id"]).json["response"] == "Sent an email to Dana about the Q3 report."
    plain = chat.send(alice, "Write a 12-word note about stop buttons")
    assert plain.json["requires_confirmation"] is False and len(plain.json["response"].split()) == 12


def test_a_new_message_waits_for_an_answer_to_the_pending_action(chat: ChatApi) -> None:
    alice = chat.sign_in()
    thread_id = planned(chat, alice)
    before = chat.snapshot()
    busy = chat.send(alice, "And another thing", thread_id)
    assert busy.status == 409 and busy.error["error"] == "action_pending"
    assert chat.snapshot() == before
    assert chat.cancel(alice, thread_id).status == 200
    assert chat.send(alice, "And another thing", thread_id).status == 200


# ---------------------------------------------------------------------------- streaming


def test_the_stream_sends_tokens_then_the_seeds_confirmation_required_then_done(chat: ChatApi) -> None:
    alice = chat.sign_in()
    out = chat.stream(alice, MEETING)
    thread_id = out.headers["x-thread-id"]
    assert out.status == 200 and out.headers["content-type"].startswith("text/event-stream")
    names = [n for n, _ in out.events]
    assert names == ["token"] * 7 + ["confirmation_required", "done"]
    assert out.text == "I can schedule that meeting for you."
    assert out.frames[-2] == (
        "event: confirmation_required\n"
        f'data: {{"event_type":"confirmation_required","data":{{"thread_id":"{thread_id}","message":"{QUESTION}"}}}}\n\n'
    )
    assert out.events[-1][1] == {"thread_id": thread_id, "requires_confirmation": True}
    assert chat.cancel(alice, thread_id).json == cancelled_answer(thread_id)
    assert [a["status"] for a in chat.thread(alice, thread_id).json["actions"]] == ["cancelled"]


def test_a_streaming_reply_stopped_by_chat_cancel_ends_cancelled_and_the_thread_goes_on(env: Env) -> None:
    chat = ChatApi(env, step_ms=2)
    alice = chat.sign_in()
    first = chat.send(alice, "Write a 3-word hello")
    thread_id = first.json["thread_id"]
    answered: list[Reply] = []

    def cancel_after_five_tokens(out: Streamed) -> None:
        if not answered and sum(n == "token" for n, _ in out.events) >= 5:
            answered.append(chat.cancel(alice, thread_id))

    out = chat.stream(alice, LONG, thread_id, seen=cancel_after_five_tokens)
    assert answered[0].json == cancelled_answer(thread_id)
    names = [n for n, _ in out.events]
    assert names[-1] == "cancelled" and set(names[:-1]) == {"token"} and len(names) < 5000
    assert out.events[-1][1] == {"thread_id": thread_id, "status": "cancelled"}
    # the partial reply is the thread's last message; a repeat answers the same; the thread goes on
    assert chat.thread(alice, thread_id).json["messages"][-1]["content"] == out.text
    assert chat.cancel(alice, thread_id).json == cancelled_answer(thread_id)
    assert chat.send(alice, "Write a 2-word reply", thread_id).status == 200


def test_a_message_while_a_reply_streams_is_refused_until_it_is_cancelled(env: Env) -> None:
    chat = ChatApi(env, step_ms=2)
    alice = chat.sign_in()
    thread_id = chat.send(alice, "Write a 2-word hi").json["thread_id"]
    tried: list[Reply] = []

    def meanwhile(out: Streamed) -> None:
        if not tried and out.events:
            tried.append(chat.send(alice, "hello?", thread_id))
            tried.append(chat.cancel(alice, thread_id))

    out = chat.stream(alice, LONG, thread_id, seen=meanwhile)
    assert tried[0].status == 409 and tried[0].error["error"] == "reply_in_progress"
    assert tried[1].status == 200 and out.events[-1][0] == "cancelled"


def test_a_sync_reply_cancelled_from_another_tab_answers_with_what_it_had_said(env: Env) -> None:
    chat = ChatApi(env, step_ms=2)
    alice = chat.sign_in()
    thread_id = chat.send(alice, "Write a 2-word hi").json["thread_id"]
    replies: list[Reply] = []
    sender = threading.Thread(target=lambda: replies.append(chat.send(alice, LONG, thread_id)))
    sender.start()

    def new_reply_has_words() -> bool:
        thread = chat.store.chat.get_thread(thread_id)
        head = chat.store.turns.head(thread.reply) if thread and thread.next_seq > 3 and thread.reply else None
        return head is not None and head.seq > 2

    eventually(new_reply_has_words, "the new reply's first words")
    assert chat.cancel(alice, thread_id).status == 200
    sender.join(timeout=30)
    (r,) = replies
    assert r.status == 200 and r.json["requires_confirmation"] is False
    assert 0 < len(r.json["response"].split()) < 5000
    assert chat.thread(alice, thread_id).json["messages"][-1]["content"] == r.json["response"]


# ---------------------------------------------------------------------------- the cookie API


def test_every_chat_route_needs_a_live_session(chat: ChatApi) -> None:
    alice = chat.sign_in()
    thread_id = planned(chat, alice)
    tampered = alice[:-1] + ("A" if alice[-1] != "A" else "B")
    for session in (None, "", "forged-value", tampered, "x" * 300):
        for r in (
            chat.send(session or "", "hi")
            if session is not None
            else chat.call("POST", "/chat", body={"message": "hi"}),
            chat.cancel(session or "", thread_id),
            chat.confirm(session or "", thread_id),
            chat.thread(session or "", thread_id),
        ):
            assert r.status == 401 and r.error["error"] == "not_authenticated", (session, r.text)
    # an expired (idle) session and a signed-out one are refused the same way
    idle = chat.sign_in("alice", idle_s=60)
    chat.env.clock.advance(61)
    assert chat.cancel(idle, thread_id).status == 401
    gone = chat.sign_in("alice")
    chat.store.signins.end_session(secret_hash(gone))
    assert chat.cancel(gone, thread_id).status == 401
    # and nothing was cancelled by any of them
    assert chat.thread(alice, thread_id).json["actions"][0]["status"] == "pending"


def test_using_a_session_keeps_it_from_going_idle(env: Env) -> None:
    chat = ChatApi(env, chat_session_idle_seconds=120)
    alice = chat.sign_in(idle_s=120)
    thread_id = planned(chat, alice)
    for _ in range(3):
        chat.env.clock.advance(90)  # past the first idle expiry, but each use pushed it forward
        assert chat.thread(alice, thread_id).status == 200
    chat.env.clock.advance(121)
    assert chat.thread(alice, thread_id).status == 401


def test_another_users_thread_is_not_found_and_unchanged(chat: ChatApi) -> None:
    alice, bob = chat.sign_in("alice"), chat.sign_in("bob")
    thread_id = planned(chat, alice)
    before = chat.snapshot(but=("RATE#",))
    for r in (
        chat.cancel(bob, thread_id),
        chat.confirm(bob, thread_id),
        chat.thread(bob, thread_id),
        chat.send(bob, "Write a 2-word hi", thread_id),
    ):
        assert r.status == 404 and r.error == {"error": "not_found", "message": "Thread not found"}
    assert chat.snapshot(but=("RATE#",)) == before
    assert chat.confirm(alice, thread_id).status == 200


def test_csrf_state_changes_need_json_and_an_allowed_origin(chat: ChatApi) -> None:
    alice = chat.sign_in()
    thread_id = planned(chat, alice)
    before = chat.snapshot()
    for headers in (
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"origin": "https://evil.example"},
        {"origin": "http://localhost.evil.example:3000"},
        {"origin": "null"},
    ):
        for path in ("/chat/cancel", "/chat/confirm", "/chat"):
            r = chat.call("POST", path, body={"thread_id": thread_id, "message": "hi"}, session=alice, headers=headers)
            assert r.status == 403 and r.error["error"] == "forbidden", (path, headers, r.text)
            assert "access-control-allow-origin" not in r.headers
    assert chat.snapshot() == before
    # the API's own origin and an allowed one pass, with CORS for credentials
    same = chat.cancel(alice, thread_id, headers={"origin": "http://127.0.0.1:3000"})
    assert same.status == 200
    ok = chat.cancel(alice, thread_id, headers={"origin": ALLOWED, "content-type": "application/json; charset=utf-8"})
    assert ok.status == 200 and ok.headers["access-control-allow-origin"] == ALLOWED
    assert ok.headers["access-control-allow-credentials"] == "true" and "Origin" in ok.headers["vary"]


def test_cors_preflights_are_answered_for_allowed_origins_only(chat: ChatApi) -> None:
    asks = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    for path in ("/chat", "/chat/cancel", "/chat/stream", "/chat/confirm"):
        r = chat.call("OPTIONS", path, headers={"origin": ALLOWED, **asks})
        assert r.status == 204 and r.headers["access-control-allow-origin"] == ALLOWED, (path, r.text)
        assert r.headers["access-control-allow-credentials"] == "true"
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "content-type" in r.headers["access-control-allow-headers"].lower()
        denied = chat.call("OPTIONS", path, headers={"origin": "https://evil.example", **asks})
        assert denied.status == 403 and "access-control-allow-origin" not in denied.headers
    odd = chat.call("OPTIONS", "/chat", headers={"origin": ALLOWED, "access-control-request-method": "DELETE"})
    assert odd.status == 403


def test_errors_carry_cors_headers_so_an_allowed_page_can_read_them(chat: ChatApi) -> None:
    r = chat.cancel("forged", "thread_x", headers={"origin": ALLOWED})
    assert r.status == 401 and r.headers["access-control-allow-origin"] == ALLOWED


def test_the_61st_cancel_in_a_minute_is_rate_limited_exactly(chat: ChatApi) -> None:
    alice = chat.sign_in()
    thread_id = planned(chat, alice)
    chat.env.clock.advance(ms=60_000 - chat.store.now() % 60_000)  # the start of a window
    answers = [chat.cancel(alice, thread_id) for _ in range(61)]
    assert [a.status for a in answers] == [200] * 60 + [429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers[:60]] == [str(59 - i) for i in range(60)]
    limited = answers[-1]
    assert limited.error["error"] == "rate_limited" and limited.headers["retry-after"] == "60"
    # another session has its own window; the next window starts afresh
    assert chat.cancel(chat.sign_in("alice"), thread_id).status == 200
    chat.env.clock.advance(59.5)
    assert chat.cancel(alice, thread_id).headers["retry-after"] == "1"
    chat.env.clock.advance(0.5)
    assert chat.cancel(alice, thread_id).status == 200


def test_the_rate_limit_is_a_knob(env: Env) -> None:
    chat = ChatApi(env, chat_rate_per_minute=2)
    alice = chat.sign_in()
    thread_id = planned(chat, alice)
    assert [chat.cancel(alice, thread_id).status for _ in range(3)] == [200, 200, 429]


def test_a_store_failure_while_cancelling_is_the_seeds_500_and_changes_nothing(chat: ChatApi) -> None:
    alice = chat.sign_in()
    thread_id = planned(chat, alice)
    before = chat.snapshot(but=("RATE#",))
    for code in ("InternalServerError", "ProvisionedThroughputExceededException", "ValidationException"):
        chat.faults.rule = failing(code, touches_a_turn)
        r = chat.cancel(alice, thread_id)
        assert r.status == 500 and r.error["error"] == "cancellation_error", r.text
        assert r.error["message"].startswith("Failed to cancel action: ") and "Traceback" not in r.text
        assert chat.snapshot(but=("RATE#",)) == before
    # a failure before anything (the session read) is the same 500
    chat.faults.rule = lambda op, kw: "InternalServerError" if op == "get_item" else None
    assert chat.cancel(alice, thread_id).error["error"] == "cancellation_error"
    chat.faults.rule = lambda op, kw: None
    assert chat.snapshot(but=("RATE#",)) == before
    # the action is still pending: a retry cancels it
    assert chat.cancel(alice, thread_id).json == cancelled_answer(thread_id)


def test_a_failure_while_cancelling_a_streaming_reply_and_its_action_changes_neither(env: Env) -> None:
    chat = ChatApi(env, model=Words(3000, 0.002))  # a long reply to a planned action
    alice = chat.sign_in()
    answers: list[Reply] = []

    def fail_then_cancel(out: Streamed) -> None:
        if answers or not out.events:
            return
        thread_id = out.events[0][1]["thread_id"]
        # the reply streams and its action waits: both are flagged in one transaction
        chat.faults.rule = lambda op, kw: "InternalServerError" if op == "transact_write_items" else None
        answers.append(chat.cancel(alice, thread_id))
        chat.faults.rule = lambda op, kw: None
        thread = chat.store.chat.get_thread(thread_id)
        assert thread is not None and thread.action and thread.reply
        for turn_id in (thread.action, thread.reply):
            head = chat.store.turns.head(turn_id)
            assert head is not None and not head.cancel_requested
        answers.append(chat.cancel(alice, thread_id))

    out = chat.stream(alice, MEETING, seen=fail_then_cancel)
    thread_id = out.headers["x-thread-id"]
    assert answers[0].status == 500 and answers[0].error["error"] == "cancellation_error"
    assert answers[1].json == cancelled_answer(thread_id) and out.events[-1][0] == "cancelled"
    assert [a["status"] for a in chat.thread(alice, thread_id).json["actions"]] == ["cancelled"]


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ("{}", 400, "invalid_request"),
        ('{"thread_id": ""}', 400, "invalid_request"),
        ('{"thread_id": 5}', 400, "invalid_request"),
        ('{"thread_id": null}', 400, "invalid_request"),
        ('{"thread_id": "thread_', 400, "invalid_request"),
        ("[1, 2]", 400, "invalid_request"),
        ("", 400, "invalid_request"),
        ('{"thread_id": "thread_unknown0000000000000000"}', 404, "not_found"),
        ('{"thread_id": "../../etc"}', 404, "not_found"),
        ('{"thread_id": "' + "t" * 129 + '"}', 400, "invalid_request"),
        ('{"thread_id": "' + "x" * 300_000 + '"}', 413, "payload_too_large"),
    ],
)
def test_bad_cancel_input_is_a_clear_error_and_changes_nothing(chat: ChatApi, raw: str, status: int, code: str) -> None:
    alice = chat.sign_in()
    planned(chat, alice)
    before = chat.snapshot(but=("RATE#",))
    r = chat.call("POST", "/chat/cancel", raw=raw, session=alice)
    assert (r.status, r.error["error"]) == (status, code), r.text
    assert chat.snapshot(but=("RATE#",)) == before


def test_bad_message_input_is_a_clear_error(chat: ChatApi) -> None:
    alice = chat.sign_in()
    for raw in (
        "{}",
        '{"message": ""}',
        '{"message": "   "}',
        '{"message": 7}',
        '{"message": "hi", "thread_id": ""}',
        "{",
    ):
        r = chat.call("POST", "/chat", raw=raw, session=alice)
        assert r.status == 400 and r.error["error"] == "invalid_request", raw
    r = chat.send(alice, "hi", "thread_doesnotexist000000000")
    assert r.status == 404 and r.error["error"] == "not_found"
    assert chat.thread(alice, "nope").status == 404
    assert chat.call("GET", "/chat/nowhere", session=alice).error["error"] == "not_found"


# ---------------------------------------------------------------------------- cost and the core


def test_a_cancel_is_two_small_reads_its_count_and_one_write(chat: ChatApi) -> None:
    alice = chat.sign_in()
    thread_id = planned(chat, alice)
    chat.env.counter.reset()
    assert chat.cancel(alice, thread_id).status == 200
    # the session and the thread; the rate window; the action's flag (its reply has ended and
    # the thread forgot it)
    assert chat.env.counter.reads == ["GetItem", "GetItem"]
    assert chat.env.counter.writes == ["UpdateItem", "UpdateItem"]
    chat.env.counter.reset()
    assert chat.cancel(alice, thread_id).status == 200  # a repeat: its count, and a refused write
    assert chat.env.counter.writes == ["UpdateItem", "UpdateItem"]


def test_a_reply_that_ended_without_its_thread_forgetting_it_is_skipped_by_a_cancel(chat: ChatApi) -> None:
    alice = chat.sign_in()
    thread_id = planned(chat, alice)
    thread = chat.store.chat.get_thread(thread_id)
    assert thread is not None and thread.reply is None and thread.action  # forgotten once it ended
    # as if the after-finish write had never landed: the thread still names the ended reply
    chat.env.client.update_item(
        TableName=chat.env.store.table,
        Key={"pk": {"S": f"THREAD#{thread_id}"}, "sk": {"S": "META"}},
        UpdateExpression="SET reply = :r",
        ExpressionAttributeValues={":r": {"S": last_reply(chat, thread_id)}},
    )
    chat.env.counter.reset()
    assert chat.cancel(alice, thread_id).json == cancelled_answer(thread_id)
    # both in one transaction, refused by the ended reply (nothing written); then the action alone
    assert chat.env.counter.writes == ["UpdateItem", "TransactWriteItems", "UpdateItem"]
    assert [a["status"] for a in chat.thread(alice, thread_id).json["actions"]] == ["cancelled"]


def last_reply(chat: ChatApi, thread_id: str) -> str:
    messages = [i for i in chat.snapshot() if i["pk"]["S"] == f"THREAD#{thread_id}" and "turn_id" in i]
    return str(messages[-1]["turn_id"]["S"])


def test_an_action_waiting_for_confirmation_is_never_swept_to_a_worker(chat: ChatApi) -> None:
    alice = chat.sign_in(idle_s=7200)
    thread_id = planned(chat, alice)
    thread = chat.store.chat.get_thread(thread_id)
    assert thread is not None and thread.action
    chat.env.clock.advance(3600)
    stale = {t for shard in range(8) for t in chat.store.sweep.stale_turns(shard, 300_000)}
    assert thread.action not in stale
    # and it is kept as long as its thread, not only a running turn's two days
    head = chat.env.client.get_item(
        TableName=chat.env.store.table, Key={"pk": {"S": f"TURN#{thread.action}"}, "sk": {"S": "TURN"}}
    )["Item"]
    assert int(head["ttl"]["N"]) * 1000 > thread.expires_at
    assert chat.confirm(alice, thread_id).status == 200


def test_a_queued_only_cancel_loses_to_a_claim_and_says_so(env: Env) -> None:
    new = NewTurn(
        id="act_core0000000000000000001",
        kind="chat_action",
        tenant=TENANT,
        scope=scopes.chat("thread_a"),
        grace_ms=60_000,
        swept=False,
    )
    turn = env.store.turns.start(new, action_planned)
    env.store.turns.claim(turn.id, "confirm-1", 10_000)
    req = CancelRequest(reason="no")
    outcome, old = env.store.turns.request_cancel(turn.id, tenant=TENANT, req=req, only_queued=True)
    assert outcome is CancelOutcome.ALREADY_STARTED and old is not None and not old.cancel_requested
    # without only_queued the same running turn would be flagged
    outcome, _ = env.store.turns.request_cancel(turn.id, tenant=TENANT, req=req)
    assert outcome is CancelOutcome.CANCELLING


def test_a_confirm_that_died_after_its_claim_is_finished_by_the_next_confirm(chat: ChatApi) -> None:
    alice = chat.sign_in()
    thread_id = planned(chat, alice)
    thread = chat.store.chat.get_thread(thread_id)
    assert thread is not None and thread.action
    chat.store.turns.claim(thread.action, "confirm-that-died", 10_000)
    busy = chat.confirm(alice, thread_id)
    assert busy.status == 409 and "already confirmed" in busy.error["message"]
    assert chat.cancel(alice, thread_id).status == 409
    chat.env.clock.advance(11)
    assert chat.confirm(alice, thread_id).status == 200
    assert [a["status"] for a in chat.thread(alice, thread_id).json["actions"]] == ["executed"]
    head = chat.store.turns.head(thread.action)
    assert head is not None and head.status is Status.COMPLETED


class Gate:
    """Holds the confirm's claim and the cancel's flag write until both are about to be sent,
    then lets them go at once. ``last`` arrives at the gate last (once the other waits there),
    so it is released first: both writes are in flight together, ``last`` a moment ahead."""

    def __init__(self, last: str) -> None:
        self.last = last
        self.barrier = threading.Barrier(2, timeout=20)
        self.passed: set[str] = set()

    def __call__(self, op: str, kw: dict[str, Any]) -> None:
        side = threading.current_thread().name
        if side not in ("confirm", "cancel") or side in self.passed or not touches_a_turn(op, kw):
            return
        self.passed.add(side)
        if side == self.last:
            eventually(lambda: self.barrier.n_waiting == 1, "the other side at its write", within_s=20)
        self.barrier.wait()


def race_once(chat: ChatApi, alice: str, cancel_ahead: bool) -> tuple[Reply, Reply]:
    """A confirm and a cancel on one pending action, their decisive writes sent together."""
    thread_id = planned(chat, alice)
    out: dict[str, Reply] = {}
    chat.faults.before = Gate("cancel" if cancel_ahead else "confirm")
    calls = {"confirm": lambda: chat.confirm(alice, thread_id), "cancel": lambda: chat.cancel(alice, thread_id)}
    threads = [threading.Thread(name=n, target=lambda n=n: out.update({n: calls[n]()})) for n in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    chat.faults.before = lambda op, kw: None
    confirm, cancel = out["confirm"], out["cancel"]
    # exactly one wins; the other is a 409; the action executed iff the confirm won
    assert sorted([confirm.status, cancel.status]) == [200, 409], (confirm.text, cancel.text)
    loser = cancel if confirm.status == 200 else confirm
    assert loser.error["error"] == ("nothing_to_cancel" if confirm.status == 200 else "nothing_to_confirm")
    view = chat.thread(alice, thread_id).json
    assert [a["status"] for a in view["actions"]] == (["executed"] if confirm.status == 200 else ["cancelled"])
    executed = [m for m in view["messages"] if m["content"].startswith("Created a meeting")]
    assert len(executed) == (1 if confirm.status == 200 else 0)
    return confirm, cancel


def races(chat: ChatApi, rounds: int) -> set[str]:
    """``rounds`` races (confirm and cancel a moment ahead by turns); who won."""
    alice = chat.sign_in()
    winners = set()
    for i in range(rounds):
        confirm, _ = race_once(chat, alice, cancel_ahead=i % 2 == 0)
        winners.add("confirm" if confirm.status == 200 else "cancel")
    return winners


def test_confirm_and_cancel_racing_on_one_action_exactly_one_wins(chat: ChatApi) -> None:
    assert races(chat, 6) <= {"confirm", "cancel"}


# ---------------------------------------------------------------- on DynamoDB Local only


@only_on_dynamodb_local
def test_confirm_and_cancel_racing_many_times_exactly_one_wins_each_time_and_both_win_sometimes(env: Env) -> None:
    """Each round: a pending action, a confirm thread and a cancel thread released by one
    barrier (which one starts first alternates). Every round exactly one gets 200 and the other
    409, and the action executed iff the confirm won (race_once checks); over the rounds both
    confirm and cancel win."""
    assert races(ChatApi(env), 30) == {"confirm", "cancel"}
