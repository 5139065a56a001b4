"""The chat dialect end to end: the local runtime over real HTTP, signing in through its
development OpenID provider by following redirects, as a browser would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.e2e.conftest import LocalApi, sse_events

MEETING = "Schedule a meeting titled 'Project Review' on March 10th at 3 PM"
QUESTION = "Should I create a meeting titled 'Project Review' on March 10th at 3 PM?"
PAGE = "http://localhost:5173"  # a page on another port of this machine: an allowed origin locally


def sign_in(local_api: LocalApi, user: str) -> httpx.Client:
    """A browser-like client signed in as ``user``: /auth/login, the provider, the callback."""
    client = httpx.Client(base_url=local_api.url, follow_redirects=True, timeout=60)
    r = client.get("/auth/login", params={"login_hint": user})
    assert r.status_code == 200 and r.json()["user"] == user, r.text
    hops = [str(h.url) for h in r.history]
    assert "/authorize?" in hops[1] and "/auth/callback?" in hops[2]
    assert "session_id" in client.cookies
    return client


@pytest.fixture
def alice(local_api: LocalApi) -> Iterator[httpx.Client]:
    with closing(sign_in(local_api, "alice")) as client:
        yield client


def cancelled(thread_id: str) -> dict[str, Any]:
    return {"thread_id": thread_id, "status": "cancelled", "response": "Action cancelled.", "cancelled": True}


def test_the_seeds_workflow_over_http(local_api: LocalApi, alice: httpx.Client) -> None:
    # 1. the agent requests confirmation
    r = alice.post("/chat", json={"message": MEETING})
    thread_id = r.json()["thread_id"]
    assert r.status_code == 200 and r.json() == {
        "response": "I can schedule that meeting for you.",
        "thread_id": thread_id,
        "requires_confirmation": True,
        "confirmation_message": QUESTION,
    }
    # 2. the user cancels — the seed's curl: Content-Type and a Cookie header, nothing else
    session = alice.cookies["session_id"]
    with httpx.Client(base_url=local_api.url, timeout=60) as curl:
        headers = {"Content-Type": "application/json", "Cookie": f"session_id={session}"}
        out = curl.post("/chat/cancel", headers=headers, content=f'{{"thread_id": "{thread_id}"}}')
        # 3. the action is cancelled, the agent confirms it; again, the same answer
        assert (out.status_code, out.json()) == (200, cancelled(thread_id))
        again = curl.post("/chat/cancel", headers=headers, content=f'{{"thread_id": "{thread_id}"}}')
        assert (again.status_code, again.json()) == (200, cancelled(thread_id))
        # without the cookie: the seed's 401
        bare = curl.post("/chat/cancel", headers={"Content-Type": "application/json"}, json={"thread_id": thread_id})
        assert bare.status_code == 401 and bare.json()["error"] == "not_authenticated"
    # the action never executes
    no = alice.post("/chat/confirm", json={"thread_id": thread_id})
    assert no.status_code == 409 and no.json()["error"] == "nothing_to_confirm"
    view = alice.get(f"/chat/threads/{thread_id}").json()
    assert [a["status"] for a in view["actions"]] == ["cancelled"]
    assert not any(m["content"].startswith("Created a meeting") for m in view["messages"])
    # and the conversation continues with the same thread_id
    more = alice.post("/chat", json={"message": "Write a 5-word note instead", "thread_id": thread_id})
    assert more.status_code == 200 and more.json()["thread_id"] == thread_id
    assert len(more.json()["response"].split()) == 5
    messages = alice.get(f"/chat/threads/{thread_id}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]


def test_confirm_executes_the_action_and_a_late_cancel_is_409(alice: httpx.Client) -> None:
    thread_id = alice.post("/chat", json={"message": "Send an email to Dana about the Q3 report"}).json()["thread_id"]
    done = alice.post("/chat/confirm", json={"thread_id": thread_id})
    assert done.json() == {
        "thread_id": thread_id,
        "status": "confirmed",
        "confirmed": True,
        "response": "Sent an email to Dana about the Q3 report.",
    }
    late = alice.post("/chat/cancel", json={"thread_id": thread_id})
    assert late.status_code == 409 and late.json()["error"] == "nothing_to_cancel"
    assert [a["status"] for a in alice.get(f"/chat/threads/{thread_id}").json()["actions"]] == ["executed"]


def test_streaming_asks_with_confirmation_required_and_cancel_stops_a_streamed_reply(alice: httpx.Client) -> None:
    with alice.stream("POST", "/chat/stream", json={"message": MEETING}) as r:
        thread_id = r.headers["X-Thread-Id"]
        events = list(sse_events(r.iter_lines()))
    assert [e["event"] for e in events] == ["token"] * 7 + ["confirmation_required", "done"]
    assert events[-2]["data"] == {
        "event_type": "confirmation_required",
        "data": {"thread_id": thread_id, "message": QUESTION},
    }
    assert alice.post("/chat/cancel", json={"thread_id": thread_id}).json() == cancelled(thread_id)
    # a long reply on the same thread, stopped from "another tab" while it streams
    seen: list[dict[str, Any]] = []
    some = threading.Event()

    def reader() -> None:
        body = {"message": "Write a 5000-word essay on stop buttons", "thread_id": thread_id}
        with alice.stream("POST", "/chat/stream", json=body) as s:
            for ev in sse_events(s.iter_lines()):
                seen.append(ev)
                if len(seen) == 5:
                    some.set()

    t = threading.Thread(target=reader)
    t.start()
    assert some.wait(timeout=30)
    stop = alice.post("/chat/cancel", json={"thread_id": thread_id})
    t.join(timeout=60)
    assert stop.json() == cancelled(thread_id)
    assert seen[-1]["event"] == "cancelled" and seen[-1]["data"]["event_type"] == "cancelled"
    assert {e["event"] for e in seen[:-1]} == {"token"} and len(seen) < 5000
    partial = "".join(e["data"]["data"]["text"] for e in seen[:-1])
    assert alice.get(f"/chat/threads/{thread_id}").json()["messages"][-1]["content"] == partial


def test_the_61st_cancel_in_a_window_is_rate_limited(alice: httpx.Client) -> None:
    thread_id = alice.post("/chat", json={"message": MEETING}).json()["thread_id"]
    answers: list[httpx.Response] = []
    while not answers or answers[-1].status_code != 429:
        answers.append(alice.post("/chat/cancel", json={"thread_id": thread_id}))
        assert len(answers) <= 125, "no 429 within two windows"
    limited = answers[-1]
    assert limited.json()["error"] == "rate_limited" and 1 <= int(limited.headers["Retry-After"]) <= 60
    # the 429 came in the window of the success before it: exactly 60 were counted there
    window = answers[-2].headers["X-RateLimit-Reset"]
    in_window = [a for a in answers[:-1] if a.headers["X-RateLimit-Reset"] == window]
    assert len(in_window) == 60 and all(a.status_code == 200 for a in in_window)
    assert answers[-2].headers["X-RateLimit-Remaining"] == "0"


def test_csrf_and_cors_for_the_cookie_api(local_api: LocalApi, alice: httpx.Client) -> None:
    thread_id = alice.post("/chat", json={"message": MEETING}).json()["thread_id"]
    evil = alice.post("/chat/cancel", json={"thread_id": thread_id}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and evil.json()["error"] == "forbidden"
    assert "access-control-allow-origin" not in evil.headers
    form = alice.post(
        "/chat/cancel", content=f"thread_id={thread_id}", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 403
    assert alice.get(f"/chat/threads/{thread_id}").json()["actions"][0]["status"] == "pending"
    preflight = httpx.options(
        f"{local_api.url}/chat/cancel",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == PAGE
    assert preflight.headers["access-control-allow-credentials"] == "true"
    denied = httpx.options(
        f"{local_api.url}/chat/cancel",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert denied.status_code == 403 and "access-control-allow-origin" not in denied.headers
    # the seed's fetch(..., {credentials: 'include'}) from the allowed page
    ok = alice.post("/chat/cancel", json={"thread_id": thread_id}, headers={"Origin": PAGE})
    assert ok.json() == cancelled(thread_id)
    assert (
        ok.headers["access-control-allow-origin"] == PAGE and ok.headers["access-control-allow-credentials"] == "true"
    )


def browser(local_api: LocalApi) -> httpx.Client:
    return httpx.Client(base_url=local_api.url, follow_redirects=False, timeout=60)


def start(client: httpx.Client, fault: str | None = None) -> str:
    """/auth/login, then the provider (with a dev fault); the callback URL it sends us to."""
    login = client.get("/auth/login", params={"login_hint": "mallory"})
    assert login.status_code == 302
    authorize = login.headers["Location"] + (f"&dev_fault={fault}" if fault else "")
    approved = client.get(authorize)
    assert approved.status_code == 302
    return str(approved.headers["Location"])


@pytest.mark.parametrize("fault", ["wrong_audience", "bad_signature"])
def test_an_id_token_with_a_wrong_audience_or_a_bad_signature_signs_nobody_in(local_api: LocalApi, fault: str) -> None:
    with browser(local_api) as client:
        r = client.get(start(client, fault))
        assert r.status_code == 401 and r.json()["error"] == "invalid_token"
        assert "session_id" not in client.cookies


def test_a_replayed_state_or_code_is_refused(local_api: LocalApi) -> None:
    with browser(local_api) as client:
        callback = start(client)
        assert client.get(callback).status_code == 302 and "session_id" in client.cookies
        replayed = client.get(callback)  # the same state again
        assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_state"
        code = dict(parse_qsl(urlsplit(callback).query))["code"]
        fresh = dict(parse_qsl(urlsplit(start(client)).query))
        old_code = client.get("/auth/callback", params={"code": code, "state": fresh["state"]})
        assert old_code.status_code == 400 and old_code.json()["error"] == "invalid_grant"


def test_a_tampered_or_signed_out_cookie_is_not_authenticated(local_api: LocalApi) -> None:
    with closing(sign_in(local_api, "carol")) as carol:
        value = carol.cookies["session_id"]
        tampered = value[:-2] + ("xy" if not value.endswith("xy") else "yz")
        r = httpx.get(f"{local_api.url}/auth/session", headers={"Cookie": f"session_id={tampered}"})
        assert r.status_code == 401 and r.json()["error"] == "not_authenticated"
        out = carol.post("/auth/logout", json={})
        assert out.status_code == 200 and "session_id" not in carol.cookies
        again = httpx.post(
            f"{local_api.url}/chat/cancel", json={"thread_id": "thread_x"}, headers={"Cookie": f"session_id={value}"}
        )
        assert again.status_code == 401


def test_another_users_thread_is_404(local_api: LocalApi, alice: httpx.Client) -> None:
    thread_id = alice.post("/chat", json={"message": MEETING}).json()["thread_id"]
    with closing(sign_in(local_api, "bob")) as bob:
        for r in (
            bob.post("/chat/cancel", json={"thread_id": thread_id}),
            bob.post("/chat/confirm", json={"thread_id": thread_id}),
            bob.get(f"/chat/threads/{thread_id}"),
            bob.post("/chat", json={"message": "hi", "thread_id": thread_id}),
        ):
            assert r.status_code == 404 and r.json() == {"error": "not_found", "message": "Thread not found"}
    assert alice.get(f"/chat/threads/{thread_id}").json()["actions"][0]["status"] == "pending"
