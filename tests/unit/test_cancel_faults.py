"""Every cancel function when DynamoDB fails under it: throttling, a transaction in flight on
the head, a timeout before the write and a timeout after it (the write landed, its answer was
lost). The caller gets a retryable 503 in the dialect's shape with Retry-After (the chat
dialect: the seed's 500 ``cancellation_error``); nothing is half-written (the head holds the
cancel exactly when the write landed); the retry gets the answer of an accepted cancel; the
turn ends cancelled once (a chat action never executes)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.cases.replies import header
from tests.faults import FAULTS, Fault, FaultyClient, conflict, updates
from tests.unit.functions_harness import Aws, Context, aws, load_event, wait_for_turn_threads  # noqa: F401
from turnstop.core.signin import WebSession, secret_hash
from turnstop.core.turn import Status
from turnstop.dialects.chat.agent import AgentModel
from turnstop.providers.base import Chunk
from turnstop.store.transaction import ATTEMPTS

LONG = "Write a 5000-word essay"


def body(resp: Any) -> Any:
    if isinstance(resp, dict):
        return json.loads(resp["body"])
    return json.loads("".join(c if isinstance(c, str) else c.decode() for c in resp.body))


def retarget(event: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return json.loads(json.dumps(event).replace(old, new))


# ---------------------------------------------------------------------------- one turn per dialect


def stateless_turn(aws: Aws) -> tuple[str, dict[str, Any]]:
    ev = load_event("sessions_stream")
    ev["body"] = json.dumps({"input": LONG})
    rid = aws.function("sessions_stream").stream_handler(ev).headers["X-Response-Id"]
    return rid, retarget(load_event("response_cancel"), "resp_example0000000000000000", rid)


def session_turn(aws: Aws) -> tuple[str, dict[str, Any]]:
    api, stream = aws.function("sessions_api"), aws.function("sessions_stream")
    sid = body(api.lambda_handler(load_event("sessions_api"), Context()))["id"]
    ev = retarget(load_event("sessions_stream"), "/v1/responses", f"/v1/sessions/{sid}/messages")
    ev["body"] = json.dumps({"message": LONG})
    ev["pathParameters"] = {"id": sid}
    rid = stream.stream_handler(ev).headers["X-Response-Id"]
    cancel = retarget(load_event("session_cancel"), "sess_example0000000000000000", sid)
    return rid, retarget(cancel, "msg_example00000000000000000", rid)


def llm_turn(aws: Aws) -> tuple[str, dict[str, Any]]:
    rid = body(aws.function("llm_api").stream_handler(load_event("llm_api")))["id"]
    return rid, retarget(load_event("llm_cancel"), "resp_cancel123", rid)


def omni_turn(aws: Aws) -> tuple[str, dict[str, Any]]:
    rid = body(aws.function("omni_api").lambda_handler(load_event("omni_api"), Context()))["data"]["response_id"]
    return rid, retarget(load_event("omni_cancel"), "0df65765-0f6c-4c3a-9a7e-3f2b8d1c4e5a", rid)


def tasks_turn(aws: Aws) -> tuple[str, dict[str, Any]]:
    tid = body(aws.function("tasks_api").lambda_handler(load_event("tasks_api"), Context()))["task_id"]
    return tid, retarget(load_event("tasks_cancel"), "task_example000000000000000", tid)


def accepted_or_ended(status: int, b: Any) -> bool:
    """The sessions seed's answers once a cancel is in: 202 while the turn stops, 200
    ``already_complete`` once it has (the turn's final state is checked separately)."""
    return (status, b["status"]) in ((202, "cancelling"), (200, "already_complete"))


@dataclass(frozen=True)
class Dialect:
    start: Callable[[Aws], tuple[str, dict[str, Any]]]
    cancel_function: str
    shape: Callable[[Any], bool]  # the dialect's error body
    accepted: Callable[[int, Any], bool]  # the answer of an accepted cancel


DIALECTS = {
    "sessions-stateless": Dialect(
        stateless_turn,
        "response_cancel",
        lambda b: b["error"]["type"] == "unavailable" and "request_id" in b["error"],
        accepted_or_ended,
    ),
    "sessions-session": Dialect(
        session_turn,
        "session_cancel",
        lambda b: b["error"]["type"] == "unavailable" and "request_id" in b["error"],
        accepted_or_ended,
    ),
    "llm": Dialect(
        llm_turn,
        "llm_cancel",
        lambda b: set(b["error"]) == {"message", "type", "param", "code"} and b["error"]["type"] == "server_error",
        lambda status, b: status == 200 and b["status"] == "cancelled",
    ),
    "omni": Dialect(
        omni_turn,
        "omni_cancel",
        lambda b: b["error"]["code"] == 503 and "request_id" in b["metadata"],
        lambda status, b: status == 200 and b["data"] == {"canceled": True},
    ),
    "tasks": Dialect(
        tasks_turn,
        "tasks_cancel",
        lambda b: b["object"] == "error" and b["error"]["retryable"] is True,
        lambda status, b: status in (200, 202) and b["cancel_requested_at"] is not None,
    ),
}


def run_worker(aws: Aws) -> None:
    records = aws.drain_queue()
    if records:
        assert aws.function("worker").lambda_handler({"Records": records}, Context()) == {"batchItemFailures": []}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_cancel_that_meets_a_store_fault_is_a_retryable_503_and_its_retry_is_accepted(
    aws: Aws, dialect: str, fault: str
) -> None:
    d, (error, landed) = DIALECTS[dialect], FAULTS[fault]
    turn_id, event = d.start(aws)
    fn = aws.function(d.cancel_function)
    faulty = FaultyClient(fn.store.db.ddb)
    fn.store.db._ddb = faulty
    faulty.inject(Fault("update_item", error, after=landed, match=updates("cancel_requested_at")))

    first = fn.lambda_handler(event, Context())
    assert faulty.fired == 1
    assert first["statusCode"] == 503 and d.shape(body(first)), first
    assert header(first["headers"], "Retry-After") == "1"
    head = aws.store.turns.get(turn_id)
    assert head is not None and head.cancel_requested is landed  # written exactly when it landed

    retry = fn.lambda_handler(event, Context())
    assert d.accepted(retry["statusCode"], body(retry)), retry
    run_worker(aws)
    wait_for_turn_threads()
    head = aws.store.turns.get(turn_id)
    assert head is not None and head.status is Status.CANCELLED
    terminal = [e for e in aws.store.turns.read_events(turn_id, 0, head.seq) if e.seq == head.seq]
    assert len(terminal) == 1 and "cancel" in terminal[0].type


# ---------------------------------------------------------------------------- the chat dialect

SAMPLE_THREAD = "thread_xyz789"  # the thread id the sample events name
# The seed's answer to a store failure during a cancel (docs/chat.md, "Store failures"): a 500,
# with Retry-After for throttling, a conflict or a timeout, and a message that says to retry.
CHAT_STORE_FAILURE = {
    "error": "cancellation_error",
    "message": "Failed to cancel action: The service is briefly unavailable; retry shortly",
}


def chat_cancelled(thread_id: str) -> dict[str, Any]:
    return {"thread_id": thread_id, "status": "cancelled", "response": "Action cancelled.", "cancelled": True}


def signed_in(aws: Aws) -> str:
    """A session of alice in the dev tenant, as /auth/callback creates it; its cookie's value."""
    value = secrets.token_urlsafe(32)
    now = aws.store.now()
    aws.store.signins.create_session(
        WebSession(secret_hash(value), "dev", "alice", "alice", now, now + 3_600_000, now + 3_600_000, now)
    )
    return value


def chat_event(name: str, session: str, thread_id: str | None = None) -> dict[str, Any]:
    ev = load_event(name)
    ev["cookies"] = [f"session_id={session}"]
    return retarget(ev, SAMPLE_THREAD, thread_id) if thread_id else ev


class HeldReply:
    """The agent's reply to the sample message, held after its first word until ``go`` is set:
    a reply still being written while the cancel runs, however slow the machine."""

    def __init__(self, go: threading.Event) -> None:
        self.go = go

    def stream(self, prompt: str) -> Iterator[Chunk]:
        for i, chunk in enumerate(AgentModel(0).stream(prompt)):
            if i == 1:
                self.go.wait(30)
            yield chunk


@dataclass(frozen=True)
class ChatCase:
    """What is in flight when the cancel comes, and so the one write the cancel makes."""

    streaming: bool  # the reply is still being written too: both flagged in one transaction
    op: str
    match: Callable[[dict[str, Any]], bool]


CHAT_CASES = {
    # the reply has ended (the thread forgot it): one UpdateItem flags the action
    "chat-action": ChatCase(False, "update_item", updates("cancel_requested_at")),
    # the action waits and its reply streams: one TransactWriteItems flags both
    "chat-action-and-streaming-reply": ChatCase(True, "transact_write_items", lambda kw: True),
}


def fault_for(case: ChatCase, fault: str) -> Fault:
    error, landed = FAULTS[fault]
    # a transaction that meets one in flight is retried in place (store/transaction.py); it fails
    # only when the conflict outlasts every attempt
    times = ATTEMPTS if case.op == "transact_write_items" and error is conflict else 1
    return Fault(case.op, error, after=landed, times=times, match=case.match)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("case", CHAT_CASES)
def test_a_chat_cancel_that_meets_a_store_fault_is_the_seeds_500_and_its_retry_cancels(
    aws: Aws, case: str, fault: str
) -> None:
    c, landed = CHAT_CASES[case], FAULTS[fault][1]
    session = signed_in(aws)
    api, cancel = aws.function("chat_api"), aws.function("chat_cancel")
    go = threading.Event()
    streamed = None
    try:
        if c.streaming:
            stream = aws.function("chat_stream")
            stream.runner.model_factory = lambda turn: HeldReply(go)
            streamed = stream.stream_handler(chat_event("chat_stream", session))
            assert streamed.status_code == 200
            thread_id = streamed.headers["X-Thread-Id"]
        else:
            asked = api.lambda_handler(chat_event("chat_api", session), Context())
            assert asked["statusCode"] == 200 and body(asked)["requires_confirmation"] is True
            thread_id = body(asked)["thread_id"]
        thread = aws.store.chat.get_thread(thread_id)
        assert thread is not None and thread.action is not None and bool(thread.reply) is c.streaming
        flagged = [thread.action, *([thread.reply] if thread.reply else [])]

        faulty = FaultyClient(cancel.store.db.ddb)
        cancel.store.db._ddb = faulty
        injected = fault_for(c, fault)
        faulty.inject(injected)
        event = chat_event("chat_cancel", session, thread_id)

        first = cancel.lambda_handler(event, Context())
        assert injected.fired == injected.times  # the fault met the write the cancel makes
        assert (first["statusCode"], body(first)) == (500, CHAT_STORE_FAILURE), first
        assert header(first["headers"], "Retry-After") == "1"
        for turn_id in flagged:  # nothing half-written: every flag set exactly when the write landed
            head = aws.store.turns.head(turn_id)
            assert head is not None and head.cancel_requested is landed, (turn_id, head)

        retry = cancel.lambda_handler(event, Context())
        assert (retry["statusCode"], body(retry)) == (200, chat_cancelled(thread_id)), retry
    finally:
        go.set()
    if streamed is not None:  # the reply ends cancelled, its stream too
        frames = "".join(x if isinstance(x, str) else x.decode() for x in streamed.body)
        assert frames.rstrip("\n").split("\n")[-2] == "event: cancelled", frames
    wait_for_turn_threads()
    # the action never executes: it is cancelled, a confirmation is refused, no outcome is written
    no = api.lambda_handler(chat_event("chat_api_confirm", session, thread_id), Context())
    assert no["statusCode"] == 409 and body(no)["error"] == "nothing_to_confirm"
    for turn_id in flagged:
        head = aws.store.turns.head(turn_id)
        assert head is not None and head.status is Status.CANCELLED, (turn_id, head)
    view = body(api.lambda_handler(chat_event("chat_api_thread", session, thread_id), Context()))
    assert [a["status"] for a in view["actions"]] == ["cancelled"]
    assert not [m for m in view["messages"] if m["content"].startswith("Created a meeting")]


def test_a_transaction_conflict_that_clears_is_retried_in_place_and_the_chat_cancel_answers_200(aws: Aws) -> None:
    session = signed_in(aws)
    stream, cancel = aws.function("chat_stream"), aws.function("chat_cancel")
    go = threading.Event()
    stream.runner.model_factory = lambda turn: HeldReply(go)
    try:
        thread_id = stream.stream_handler(chat_event("chat_stream", session)).headers["X-Thread-Id"]
        faulty = FaultyClient(cancel.store.db.ddb)
        cancel.store.db._ddb = faulty
        faulty.inject(Fault("transact_write_items", conflict, times=ATTEMPTS - 1))
        out = cancel.lambda_handler(chat_event("chat_cancel", session, thread_id), Context())
        assert faulty.fired == ATTEMPTS - 1
        assert (out["statusCode"], body(out)) == (200, chat_cancelled(thread_id))
    finally:
        go.set()
    wait_for_turn_threads()
