"""The chat functions (chat_api, chat_stream, chat_cancel, chat_auth: the shared handlers) loaded by path and
driven with the sample events in events/ — the events `invoke` uses — inside moto; sign-in
against the local runtime's development OpenID provider on 127.0.0.1."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.unit.functions_harness import Aws, Context, aws, load_event  # noqa: F401
from turnstop.core.signin import WebSession, secret_hash
from turnstop_local.apigw.throttling import dialect_answer
from turnstop_local.oidc import DevOidcProvider

QUESTION = "Should I create a meeting titled 'Project Review' on March 10th at 3 PM?"


@pytest.fixture
def session(aws: Aws) -> str:
    """A signed-in session of alice in the dev tenant (what /auth/callback creates)."""
    value = secrets.token_urlsafe(32)
    now = aws.store.now()
    aws.store.signins.create_session(
        WebSession(secret_hash(value), "dev", "alice", "alice", now, now + 3_600_000, now + 3_600_000, now)
    )
    return value


def event(name: str, session: str | None, thread_id: str | None = None) -> dict[str, Any]:
    ev = load_event(name)
    ev["cookies"] = [f"session_id={session}"] if session else []
    if thread_id is not None:
        ev = json.loads(json.dumps(ev).replace("thread_xyz789", thread_id))
    return ev


def body(resp: dict[str, Any]) -> Any:
    return json.loads(resp["body"])


def test_the_seeds_workflow_through_the_functions(aws: Aws, session: str) -> None:
    api, cancel = aws.function("chat_api"), aws.function("chat_cancel")
    asked = api.lambda_handler(event("chat_api", session), Context())
    assert asked["statusCode"] == 200 and body(asked)["confirmation_message"] == QUESTION
    thread_id = body(asked)["thread_id"]
    out = cancel.lambda_handler(event("chat_cancel", session, thread_id), Context())
    assert (out["statusCode"], body(out)) == (
        200,
        {"thread_id": thread_id, "status": "cancelled", "response": "Action cancelled.", "cancelled": True},
    )
    assert out["headers"]["X-RateLimit-Remaining"] == "59"
    view = api.lambda_handler(event("chat_api_thread", session, thread_id), Context())
    assert [a["status"] for a in body(view)["actions"]] == ["cancelled"]
    no = api.lambda_handler(event("chat_api_confirm", session, thread_id), Context())
    assert no["statusCode"] == 409 and body(no)["error"] == "nothing_to_confirm"


def test_the_sample_events_without_a_session_are_the_seeds_401(aws: Aws) -> None:
    for fn, name in (("chat_api", "chat_api"), ("chat_cancel", "chat_cancel"), ("chat_api", "chat_api_thread")):
        out = aws.function(fn).lambda_handler(
            event(name, "example_session_0123456789abcdefghijklmnopqrstuv"), Context()
        )
        assert out["statusCode"] == 401 and body(out)["error"] == "not_authenticated"


def test_the_stream_function_streams_the_question(aws: Aws, session: str) -> None:
    stream = aws.function("chat_stream")
    answer = stream.stream_handler(event("chat_stream", session))
    text = "".join(answer.body)
    assert answer.status_code == 200 and answer.headers["X-Thread-Id"].startswith("thread_")
    assert "event: confirmation_required\n" in text and QUESTION in text and text.endswith("\n\n")
    assert text.rstrip().split("\n")[-2] == "event: done"


def test_a_throttled_cancel_answers_in_the_chat_shape(aws: Aws) -> None:
    answer = dialect_answer(aws.function("chat_cancel").app)
    assert answer is not None
    out = answer(event("chat_cancel", None))
    assert out["statusCode"] == 429 and body(out)["error"] == "rate_limited"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[DevOidcProvider]:
    with DevOidcProvider() as p:
        monkeypatch.setenv("TURNSTOP_OIDC_ISSUER", p.issuer)
        monkeypatch.setenv("TURNSTOP_OIDC_CLIENT_ID", p.client_id)
        monkeypatch.setenv("TURNSTOP_CHAT_TENANT", "dev")
        yield p


def test_the_sign_in_function_signs_in_through_the_provider(aws: Aws, provider: DevOidcProvider) -> None:
    auth = aws.function("chat_auth")
    started = auth.lambda_handler(load_event("chat_auth"), Context())
    assert started["statusCode"] == 302
    authorize = dict(parse_qsl(urlsplit(started["headers"]["Location"]).query))
    assert authorize["login_hint"] == "alice"
    status, headers, _ = provider.authorize(authorize)
    callback = load_event("chat_auth")
    callback["rawPath"] = callback["requestContext"]["http"]["path"] = "/auth/callback"
    callback["queryStringParameters"] = dict(parse_qsl(urlsplit(headers["Location"]).query))
    callback["cookies"] = [started["cookies"][0].split(";", 1)[0]]
    done = auth.lambda_handler(callback, Context())
    assert done["statusCode"] == 302 and done["headers"]["Location"] == "/auth/session"
    session = next(c for c in done["cookies"] if c.startswith("session_id="))
    me = load_event("chat_auth")
    me["rawPath"] = me["requestContext"]["http"]["path"] = "/auth/session"
    me["queryStringParameters"] = None
    me["cookies"] = [session.split(";", 1)[0]]
    assert body(auth.lambda_handler(me, Context()))["user"] == "alice"
