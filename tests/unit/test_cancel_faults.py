"""Every cancel function when DynamoDB fails under it: throttling, a transaction in flight on
the head, a timeout before the write and a timeout after it (the write landed, its answer was
lost). The caller gets a retryable 503 in the dialect's shape with Retry-After; nothing is
half-written (the head holds the cancel exactly when the write landed); the retry gets the
answer of an accepted cancel; the turn ends cancelled once."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.faults import Fault, FaultyClient, conflict, over_capacity, throttled, timeout, updates
from tests.unit.functions_harness import Aws, Context, aws, load_event, wait_for_turn_threads  # noqa: F401
from turnstop.core.turn import Status

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
FAULTS = {
    "throttled": (throttled, False),
    "over-capacity": (over_capacity, False),
    "transaction-in-flight": (conflict, False),
    "timeout-before-the-write": (timeout, False),
    "timeout-after-the-write": (timeout, True),
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
    assert {k.lower(): v for k, v in first["headers"].items()}["retry-after"] == "1"
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
