"""The chat dialect's pure rules: what the scripted agent recognises, which origins may call,
where a sign-in may return to, how cookies are read, how a cancel's or a confirm's body is read,
and what a queued-only cancel concludes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from turnstop.core import errors, scopes
from turnstop.core.events import Event
from turnstop.core.turn import CancelOutcome, Status, Turn, outcome_from_conflict
from turnstop.dialects.chat import agent, wire
from turnstop.dialects.chat.agent import AgentModel
from turnstop.dialects.chat.models import SendMessage
from turnstop.dialects.chat.service import action_status
from turnstop.dialects.chat.signin import safe_return_to
from turnstop.dialects.chat.threads import thread_id_of
from turnstop.dialects.chat.web import Origins, cookies_of, secure_cookies
from turnstop.http.body import parse_body
from turnstop.platform.settings import Settings


@pytest.mark.parametrize(
    ("message", "question"),
    [
        (
            "Schedule a meeting titled 'Project Review' on March 10th at 3 PM",
            "Should I create a meeting titled 'Project Review' on March 10th at 3 PM?",
        ),
        (
            "Can you please schedule a meeting called \u201cBudget  sync\u201d on Friday at 10:30 am?",
            "Should I create a meeting titled 'Budget sync' on Friday at 10:30 am?",
        ),
        (
            "Send an email to dana@example.com about the Q3 report.",
            "Should I send an email to dana@example.com about the Q3 report?",
        ),
        (
            "send an e-mail to the team about Friday's outage",
            "Should I send an email to the team about Friday's outage?",
        ),
    ],
)
def test_the_agent_plans_the_actions_it_recognises(message: str, question: str) -> None:
    plan = agent.plan(message)
    assert plan.action is not None and plan.action.confirmation == question
    assert plan.reply in ("I can schedule that meeting for you.", "I can send that email for you.")


@pytest.mark.parametrize(
    "message", ["Write a 300-word summary", "What meetings do I have?", "schedule a meeting", "email Dana"]
)
def test_anything_else_gets_the_scripted_reply(message: str) -> None:
    assert agent.plan(message) == agent.Plan(None)


def test_the_agent_model_streams_its_reply_word_by_word_or_counts_words() -> None:
    model = AgentModel(0)
    words = [c.text for c in model.stream("Schedule a meeting titled 'X' on May 1 at 9 AM")]
    assert words == ["I ", "can ", "schedule ", "that ", "meeting ", "for ", "you."]
    assert len("".join(c.text for c in model.stream("Write a 40-word note")).split()) == 40


def settings(**kw: Any) -> Settings:
    return Settings(table="t-chat", **kw)


def event(host: str = "api.example.com", proto: str = "https", **headers: str) -> dict[str, Any]:
    return {"headers": {"host": host, "x-forwarded-proto": proto, **headers}}


def test_allowed_origins_are_the_apis_own_the_listed_ones_and_port_wildcards() -> None:
    origins = Origins(
        settings(
            allowed_origins="https://app.example.com, http://localhost:*",
            public_base_url="https://chat.example.com/base",
        )
    )
    ev = event()
    for ok in (
        "https://api.example.com",
        "https://app.example.com",
        "http://localhost:5173",
        "http://localhost",
        "https://chat.example.com",
        "HTTPS://APP.EXAMPLE.COM",
    ):
        assert origins.allows(ok, ev), ok
    for no in (
        "http://api.example.com",
        "https://app.example.com.evil.net",
        "http://localhost.evil.net",
        "http://localhost:5173/x",
        "http://localhost:abc",
        "https://localhost:5173",
        "null",
        "",
    ):
        assert not origins.allows(no, ev), no


def test_cookies_come_from_payload_2_0_or_a_cookie_header_and_are_secure_off_local_http() -> None:
    assert cookies_of({"cookies": ["a=1", "session_id=s=x"], "headers": {"cookie": "b=2; a=3"}}) == {
        "a": "1",
        "session_id": "s=x",
        "b": "2",
    }
    assert secure_cookies(event()) and secure_cookies(event("127.0.0.1:3000", "https"))
    assert not secure_cookies(event("127.0.0.1:3000", "http")) and not secure_cookies(event("localhost:3000", "http"))
    assert secure_cookies(event("chat.example.com", "http"))


def test_a_sign_in_returns_only_to_a_path_on_this_site() -> None:
    assert safe_return_to(None) == "/auth/session" and safe_return_to("/chat?x=1") == "/chat?x=1"
    for bad in ("//evil", "/\\evil", "https://evil", "chat", "/x\n", "/" + "a" * 600):
        with pytest.raises(errors.InvalidRequest):
            safe_return_to(bad)


def head(status: Status, **kw: Any) -> Turn:
    return Turn(
        id="act_x",
        kind="chat_action",
        tenant="dev",
        scope=scopes.chat("thread_a"),
        stored_status=status,
        created_at=0,
        end_user="alice",
        **kw,
    )


def test_a_queued_only_cancel_refused_by_a_running_turn_is_already_started() -> None:
    args = (1000, "dev", scopes.chat("thread_a"), "alice")
    assert outcome_from_conflict(head(Status.RUNNING), *args, only_queued=True) is CancelOutcome.ALREADY_STARTED
    assert outcome_from_conflict(head(Status.COMPLETED), *args, only_queued=True) is CancelOutcome.ALREADY_TERMINAL
    flagged = head(Status.QUEUED, cancel_requested_at=5)  # cancelled before it started: terminal
    assert outcome_from_conflict(flagged, *args, only_queued=True) is CancelOutcome.ALREADY_TERMINAL
    assert flagged.status is Status.CANCELLED
    with pytest.raises(AssertionError):  # without only_queued, a running unflagged turn meets the condition
        outcome_from_conflict(head(Status.RUNNING), *args)


def test_an_actions_status_follows_its_turn() -> None:
    assert action_status(head(Status.QUEUED)) == "pending"
    assert action_status(head(Status.QUEUED, cancel_requested_at=5)) == "cancelled"
    assert action_status(head(Status.RUNNING)) == "confirmed"
    assert action_status(head(Status.COMPLETED)) == "executed"


def test_a_stored_token_delta_is_sent_as_the_seeds_token_event() -> None:
    ev = Event(3, "token.delta", {"thread_id": "thread_a", "delta": "hi "})
    assert (
        wire.frame(ev) == 'event: token\ndata: {"event_type":"token","data":{"thread_id":"thread_a","text":"hi "}}\n\n'
    )


def refusal(read: Any) -> str:
    with pytest.raises(errors.InvalidRequest) as refused:
        read()
    return refused.value.message


@pytest.mark.parametrize("thread_id", ["", 5, True, ["thread_a"], {"id": 1}, 1.5, "t" * 129])
def test_a_cancels_thread_id_is_refused_in_the_words_of_post_chats_model(thread_id: Any) -> None:
    """The cancel reads ``{"thread_id"}`` without pydantic; its 400s are the model's, word for word."""
    lean = refusal(lambda: thread_id_of({"body": json.dumps({"thread_id": thread_id})}, 1 << 20))
    model = refusal(
        lambda: parse_body({"body": json.dumps({"message": "hi", "thread_id": thread_id})}, SendMessage, 1 << 20)
    )
    assert lean == model and lean.startswith("Invalid field 'thread_id': ")


def test_a_cancels_body_needs_a_thread_id_and_ignores_other_fields() -> None:
    for body, problem in (
        ("{}", "Field required"),
        ('{"threadId": "thread_a"}', "Field required"),
        ('{"thread_id": null}', "Input should be a valid string"),
    ):
        assert refusal(lambda b=body: thread_id_of({"body": b}, 1024)) == f"Invalid field 'thread_id': {problem}"
    assert refusal(lambda: thread_id_of({"body": ""}, 1024)) == "Request body is required"
    assert refusal(lambda: thread_id_of({"body": "[1]"}, 1024)) == "Request body must be a JSON object"
    assert thread_id_of({"body": '{"thread_id": "thread_a", "extra": 1}'}, 1024) == "thread_a"
    assert thread_id_of({"body": json.dumps({"thread_id": "t" * 128})}, 1024) == "t" * 128
