"""Hostile input against every route of template.yaml, through the local runtime over real HTTP.

One table of cases per route, built from the template itself (a new route is attacked the
day it is declared): bad credentials, another tenant's and another end user's ids, odd ids in
every path parameter, malformed, deep, huge, oversized and wrongly typed bodies, junk headers
and cursors. Every answer is a 4xx in the route's dialect's documented error shape (never a
5xx), and afterwards the store and the queues are exactly as they were.

The server is this module's own, with a long grace window, so nothing in the store moves
on its own while the cases run.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import LocalApi, sse_events, wait_for
from turnstop.platform.settings import Settings
from turnstop.providers.config import SCRIPTED_ROUTES
from turnstop_local.template.facts import Template

ROUTES = Template.load(ROOT / "template.yaml").routes
LLM_MODEL = "meetkai:functionary-urdu-mini-pak"
NOTE = "Write a 3-word note"
MAX_BODY = Settings(table="turnstop").max_body_bytes


# ----------------------------------------------------------------- the dialects' error shapes


def _sessions(body: Any) -> bool:
    err = body.get("error") if isinstance(body, dict) else None
    return isinstance(err, dict) and {"type", "message", "request_id"} <= err.keys()


def _llm(body: Any) -> bool:
    err = body.get("error") if isinstance(body, dict) else None
    return isinstance(err, dict) and set(err) == {"message", "type", "param", "code"}


def _omni(body: Any) -> bool:
    err = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(err, dict)
        and isinstance(err.get("code"), int)
        and isinstance(err.get("message"), str)
        and "request_id" in (body.get("metadata") or {})
    )


def _tasks(body: Any) -> bool:
    err = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(body, dict)
        and body.get("object") == "error"
        and isinstance(err, dict)
        and {"code", "message", "retryable"} <= err.keys()
        and "request_id" in body
    )


def _chat(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str)


SHAPES: list[tuple[str, Callable[[Any], bool]]] = [
    ("/v1/admin/", _sessions),  # the operators' endpoints answer in the sessions dialect's shape
    ("/chat", _chat),
    ("/auth/", _chat),
    ("/api/v1/llm/", _llm),
    ("/v1/omni-ai/", _omni),
    ("/v1/tasks", _tasks),
    ("/v1/sessions", _sessions),
    ("/v1/responses", _sessions),
    ("/v1/ledger", _sessions),
    ("/v1/workers/", _sessions),  # the worker API answers in the sessions dialect's shape
]


def shape_of(path: str) -> Callable[[Any], bool]:
    for prefix, shape in SHAPES:
        if path.startswith(prefix):
            return shape
    raise AssertionError(f"no error shape known for {path}: add its dialect to SHAPES")


# ----------------------------------------------------------------- what each route is given

# A well-formed body per route that takes one (None: the route reads no body), and the
# query a well-formed call needs. Each case spoils exactly one part of such a call.
VALID_BODY: dict[str, Any] = {
    "POST /v1/sessions": {"persistent": True},
    "POST /v1/sessions/{id}/messages": {"message": NOTE},
    "POST /v1/sessions/{id}/responses/{rid}/cancel": {},
    "POST /v1/responses": {"input": NOTE},
    "POST /v1/responses/{rid}/cancel": {},
    "POST /api/v1/llm/responses": {"model": LLM_MODEL, "input": NOTE, "background": True},
    "POST /v1/omni-ai/threads": {"type": "instant", "account_id": 1, "text": NOTE},
    "POST /v1/omni-ai/threads/{thread_id}/messages": {"account_id": 1, "text": NOTE},
    "POST /v1/tasks": {"capability": "text.generate", "model": "auto", "input": {"prompt": NOTE}},
    "POST /v1/tasks/{task_id}/cancel": {},
    # the cancels by Idempotency-Key name alice's finished turns by their keys (VALID_HEADERS)
    "POST /v1/responses/cancel": {},
    "POST /v1/sessions/{id}/responses/cancel": {},
    "POST /v1/tasks/cancel": {},
    # an operator's bulk cancel of alice's turns (none in flight by then)
    "POST /v1/admin/cancels": {"scope": {"end_user": "alice"}, "reason": "hostile input"},
    # chat: a thread whose reply finished and that holds no action (nothing to cancel or confirm)
    "POST /chat/cancel": {"thread_id": "{thread_id}"},
    "POST /chat/confirm": {"thread_id": "{thread_id}"},
    # a worker's batch and end, for an offer that is not there (valid: 404)
    "POST /v1/workers/{queue}/offers/{offer_id}/events": {"token": "wt_hostile", "events": [["text", "hi"]]},
    "POST /v1/workers/{queue}/offers/{offer_id}/finish": {"token": "wt_hostile", "usage": {"output_tokens": 1}},
}
# The Idempotency-Keys alice's finished turns were started with, which a cancel by key names.
START_KEYS = {
    "stateless": "hostile-stateless",
    "session": "hostile-session",
    "llm": "hostile-llm",
    "task": "hostile-task",
}
VALID_HEADERS: dict[str, dict[str, str]] = {
    "POST /v1/responses/cancel": {"Idempotency-Key": START_KEYS["stateless"]},
    "POST /v1/sessions/{id}/responses/cancel": {"Idempotency-Key": START_KEYS["session"]},
    "POST /api/v1/llm/responses/cancel": {"Idempotency-Key": START_KEYS["llm"]},
    "POST /v1/tasks/cancel": {"Idempotency-Key": START_KEYS["task"]},
}
VALID_QUERY: dict[str, dict[str, str]] = {
    "GET /v1/omni-ai/threads": {"account_id": "1"},
    "GET /v1/omni-ai/threads/{thread_id}": {"account_id": "1"},
    "GET /v1/omni-ai/threads/{thread_id}/messages": {"account_id": "1"},
    "GET /v1/omni-ai/threads/{thread_id}/response": {"account_id": "1"},
    "GET /v1/omni-ai/responses/{response_id}": {"account_id": "1"},
    "DELETE /v1/omni-ai/responses/{response_id}": {"account_id": "1"},
}
# The routes that honour an Idempotency-Key (elsewhere the header is ignored).
IDEMPOTENT = {
    "POST /v1/sessions/{id}/messages",
    "POST /v1/responses",
    "POST /v1/omni-ai/threads",
    "POST /v1/omni-ai/threads/{thread_id}/messages",
    "POST /v1/tasks",
    "POST /v1/tasks/{task_id}/cancel",
    *VALID_HEADERS,  # the cancels by key, which need one
}
# Query values each route must refuse (its own parameters; unknown ones are ignored).
BAD_QUERY: dict[str, dict[str, list[str]]] = {
    "GET /v1/ledger": {"response_id": ["r" * 5000, "resp\x00x", "\u202eresp"]},
    "GET /v1/sessions/{id}/responses/{rid}/events": {"after": ["+2", "1_0", "-1", "x", "9" * 40, "999999"]},
    "GET /v1/responses/{rid}/events": {"after": ["+2", "1_0", "-1", "x", "9" * 40, "999999"]},
    "GET /api/v1/llm/responses/{response_id}": {
        "stream": ["maybe", "2"],
        "starting_after": ["+2", "1_0", "-1", "x", "9" * 40],
    },
    "GET /v1/tasks": {
        "status": ["bogus", "x" * 2000],
        "limit": ["-1", "0", "x", "9" * 40],
        "cursor": ["!!!", "x" * 5000],
    },
}
for _key in VALID_QUERY:  # "2": an account the key may act for, but not the one of the ids
    BAD_QUERY.setdefault(_key, {})["account_id"] = ["", "x", "-1", "9" * 40, "1.0"] + (["2"] if "{" in _key else [])
for _key in ("GET /v1/omni-ai/threads", "GET /v1/omni-ai/threads/{thread_id}/messages"):
    BAD_QUERY[_key].update(page_size=["0", "101", "x"], page_token=["!!!", "x" * 5000, "e30"])
# Cursor headers (the sessions dialect's Last-Event-ID), refused like the query cursor.
BAD_HEADERS: dict[str, dict[str, list[str]]] = {
    key: {"Last-Event-ID": ["+2", "1_0", "-1", "x", "9" * 40, "999999"]}
    for key in ("GET /v1/sessions/{id}/responses/{rid}/events", "GET /v1/responses/{rid}/events")
}
DEV, OTHER_TENANT = "$dev", "$other-tenant"
# The chat dialect signs browsers in: its routes take a session cookie (alice's for DEV, bob's
# for OTHER_TENANT: another user's thread is as foreign as another tenant's), never a key.
# Its sign-in routes are public by design; they get the bad query values below, unsigned.
COOKIE_ROUTES = ("/chat",)
SIGN_IN_BAD_QUERY: dict[str, dict[str, list[str]]] = {
    "GET /auth/login": {
        "return_to": ["//evil.example/", "https://evil.example/", "x" * 5000],
        "login_hint": ["h" * 5000, "b\u00f6b\u202e", "a\x00b"],
    },
    "GET /auth/callback": {"state": ["s" * 5000, "unknown"], "code": ["c" * 5000]},
}
# A POST /chat or /chat/stream that is valid would start a turn (which is what they are for):
# for them every case spoils the body or the credentials, so none is valid.
STARTS_A_TURN = {"POST /chat", "POST /chat/stream"}
ODD_IDS = ["a" * 5000, "%00", "..%2F..%2Fetc", "%E2%80%AE", "x%20y", "%27%20OR%20%271%27%3D%271", "%F0%9F%92%A5" * 300]
# Remote workers (docs/agents.md): the servers here serve one remote route, so the worker API's
# routes get past their key check; its workers prove the route's key, never a tenant's.
WORKER, WORKER_KEY, WORKER_QUEUE = "$worker", "tw_hostile_worker_key_0123456789abcdef", "hostile-q"
UNKNOWN_OFFER = "off_01hostile0unknown0offer00"
MODELS_WITH_A_REMOTE_ROUTE = json.dumps(
    {
        "default": "turnstop:scripted",
        "routes": {
            **{name: {"provider": "scripted"} for name in SCRIPTED_ROUTES},
            "remote": {
                "provider": "external",
                "queue": WORKER_QUEUE,
                "remote": True,
                "worker_key_sha256": hashlib.sha256(WORKER_KEY.encode()).hexdigest(),
            },
        },
    }
)
# the servers' env: that route, and a claim that waits for an offer 0.2 s, not 5 s
WORKER_ENV = {"TURNSTOP_MODELS": MODELS_WITH_A_REMOTE_ROUTE, "TURNSTOP_WORKER_CLAIM_WAIT_MS": "200"}


@dataclass(frozen=True)
class Case:
    name: str
    route: str  # the template's route key
    method: str
    path: str  # concrete, already percent-encoded where needed
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str | bytes] = field(default_factory=dict)
    body: bytes | None = None
    auth: str | None = DEV  # DEV, OTHER_TENANT, None (no header) or the header's literal value


@dataclass
class World:
    api: LocalApi
    other_key: str  # tenant B's key
    admin_keys: dict[str, str]  # DEV / OTHER_TENANT -> an operator's key of tenant A / B (the admin routes)
    ids: dict[str, dict[str, str]]  # route key -> path parameter -> a real id of tenant A's alice
    ddb: Any
    sqs: Any
    table: str
    queues: list[str]
    cookies: dict[str, str]  # DEV / OTHER_TENANT -> a signed-in browser's session cookie (alice's, bob's)
    chat_thread: str  # alice's chat thread: its reply finished, no action pending


# ----------------------------------------------------------------- the server and its contents


@pytest.fixture(scope="module")
def world(quiet_api: LocalApi) -> Iterator[World]:
    api = quiet_api
    state = json.loads((api.state_dir / "local.json").read_text())
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=state["region"])
    ddb = session.client("dynamodb", endpoint_url=state["dynamodb_endpoint"])
    sqs = session.client("sqs", endpoint_url=state["sqs_endpoint"])
    alice = {"Authorization": f"Bearer {api.key}", "X-On-Behalf-Of": "alice"}
    admin_keys = {DEV: api.make_key("dev", admin=True), OTHER_TENANT: api.make_key("tenant-b", admin=True)}
    with httpx.Client(base_url=api.url, headers=alice, timeout=60) as c:
        ids = finished_turns_of_alice(c, admin_keys[DEV])
    cookies = {DEV: signed_in(api, "alice"), OTHER_TENANT: signed_in(api, "bob")}
    with httpx.Client(base_url=api.url, cookies={"session_id": cookies[DEV]}, timeout=60) as c:
        reply = c.post("/chat", json={"message": NOTE})
        assert reply.status_code == 200 and not reply.json()["requires_confirmation"], reply.text
    queues = list(state["queue_urls"].values())
    ids["GET /chat/threads/{thread_id}"] = {"thread_id": reply.json()["thread_id"]}
    yield World(
        api,
        api.make_key("tenant-b"),
        admin_keys,
        ids,
        ddb,
        sqs,
        state["table_name"],
        queues,
        cookies,
        reply.json()["thread_id"],
    )


def signed_in(api: LocalApi, user: str) -> str:
    """A browser's session cookie for ``user``, through the dev provider's sign-in."""
    with httpx.Client(base_url=api.url, follow_redirects=True, timeout=60) as browser:
        r = browser.get("/auth/login", params={"login_hint": user})
        assert r.status_code == 200 and r.json()["user"] == user, r.text
        return str(browser.cookies["session_id"])


_FINISHED: dict[str, dict[str, dict[str, str]]] = {}


def finished_turns_of_alice(c: httpx.Client, admin_key: str) -> dict[str, dict[str, str]]:
    """One finished turn in every dialect, made by end user alice (with an Idempotency-Key where
    a cancel by key can name it), and an operator's bulk cancel of her turns; ids per route.
    Made once per runtime: the hostile-input and fuzz modules share one (``quiet_api``)."""
    made = _FINISHED.get(str(c.base_url))
    if made is None:
        made = _FINISHED[str(c.base_url)] = _finish_turns_of_alice(c, admin_key)
    return copy.deepcopy(made)


def _finish_turns_of_alice(c: httpx.Client, admin_key: str) -> dict[str, dict[str, str]]:

    def keyed(name: str) -> dict[str, str]:
        return {"Idempotency-Key": START_KEYS[name]}

    sid = c.post("/v1/sessions", json={"persistent": True}).json()["id"]
    with c.stream("POST", f"/v1/sessions/{sid}/messages", json={"message": NOTE}, headers=keyed("session")) as r:
        rid = r.headers["X-Response-Id"]
        assert [e["event"] for e in sse_events(r.iter_lines())][-1].endswith(".completed")
    with c.stream("POST", "/v1/responses", json={"input": NOTE}, headers=keyed("stateless")) as r:
        lone = r.headers["X-Response-Id"]
        assert [e["event"] for e in sse_events(r.iter_lines())][-1].endswith(".completed")
    llm_body = VALID_BODY["POST /api/v1/llm/responses"]
    llm = c.post("/api/v1/llm/responses", json=llm_body, headers=keyed("llm")).json()["id"]
    created = c.post("/v1/omni-ai/threads", json=VALID_BODY["POST /v1/omni-ai/threads"]).json()["data"]
    task = c.post("/v1/tasks", json=VALID_BODY["POST /v1/tasks"], headers=keyed("task")).json()["task_id"]
    wait_for(lambda: c.get(f"/api/v1/llm/responses/{llm}").json()["status"] == "completed", "llm response")
    wait_for(
        lambda: (
            c.get(f"/v1/omni-ai/threads/{created['thread_id']}/response", params={"account_id": 1}).json()["data"]
            is None
        ),
        "omni response",
    )
    wait_for(lambda: c.get(f"/v1/tasks/{task}").json()["status"] == "succeeded", "task")
    thread, omni = created["thread_id"], created["response_id"]
    report = c.post(
        "/v1/admin/cancels", json=VALID_BODY["POST /v1/admin/cancels"], headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert report.status_code == 200 and report.json()["matched"] == 0, report.text
    by_name = {
        "id": sid,
        "rid": rid,
        "thread_id": thread,
        "task_id": task,
        "bulk_id": report.json()["id"],
        "queue": WORKER_QUEUE,
        "offer_id": UNKNOWN_OFFER,
    }
    ids: dict[str, dict[str, str]] = {}
    for route in ROUTES:
        own = {"rid": lone} if route.path.startswith("/v1/responses/") else dict(by_name)
        own["response_id"] = llm if route.path.startswith("/api/v1/llm/") else omni
        signed = route.path.startswith(COOKIE_ROUTES + ("/auth/",))  # the chat's ids come with its cookies
        ids[route.route_key] = {} if signed else {p: own[p] for p in path_params(route.path)}
    return ids


def path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


# ----------------------------------------------------------------- the cases


def sign_in_cases(route_key: str, method: str, path: str) -> Iterator[Case]:
    """The sign-in routes are public: bad query values, a forged cookie, a preflight from
    another site."""
    base = Case("", route_key, method, path, auth=None)
    for param, values in SIGN_IN_BAD_QUERY.get(route_key, {}).items():
        for value in values:
            yield dataclasses.replace(base, name=f"?{param}={value[:20]!r}", query={param: value})
    if route_key == "GET /auth/callback":
        yield dataclasses.replace(base, name="a bare callback")
    if route_key in ("GET /auth/session", "POST /auth/logout"):
        yield dataclasses.replace(base, name="no cookie")
        yield dataclasses.replace(base, name="forged cookie", headers={"Cookie": "session_id=forged"})
    if method == "OPTIONS":
        yield from preflights(base)


def preflights(base: Case) -> Iterator[Case]:
    for origin in ("https://evil.example", "null"):
        yield dataclasses.replace(
            base,
            name=f"preflight from {origin}",
            path=base.path.replace("{proxy+}", "cancel"),
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )


def cookie_cases(route_key: str, method: str, template_path: str, ids: dict[str, str], thread: str) -> Iterator[Case]:
    """The chat routes: a session cookie instead of a key, thread ids in the path or the body."""
    path = fill(template_path, ids)
    valid = VALID_BODY.get(route_key, {"message": NOTE} if route_key in STARTS_A_TURN else None)
    valid = None if valid is None else {k: thread if v == "{thread_id}" else v for k, v in valid.items()}
    body = None if valid is None else json.dumps(valid).encode()
    base = Case("", route_key, method, path, body=body)
    if method == "OPTIONS":
        yield from preflights(dataclasses.replace(base, auth=None))
        return
    for name, cookie in [("no cookie", None), ("forged cookie", "forged"), ("cookie of 5000 chars", "c" * 5000)]:
        headers: dict[str, str | bytes] = {} if cookie is None else {"Cookie": f"session_id={cookie}"}
        yield dataclasses.replace(base, name=name, auth=None, headers=headers)
    if method == "POST":  # state-changing: refused as cross-site request forgery
        yield dataclasses.replace(base, name="as a form (CSRF)", headers={"Content-Type": "text/plain"})
        yield dataclasses.replace(base, name="from another site", headers={"Origin": "https://evil.example"})
    if ids or (valid and "thread_id" in valid) or route_key in STARTS_A_TURN:
        # bob, signed in, names alice's thread
        foreign = None if valid is None else json.dumps({**valid, "thread_id": thread}).encode()
        yield dataclasses.replace(base, name="another user's thread", auth=OTHER_TENANT, body=foreign)
    for odd in ODD_IDS:
        if ids:
            yield dataclasses.replace(base, name=f"thread_id={odd[:24]}", path=fill(template_path, {"thread_id": odd}))
        elif valid is not None:
            yield dataclasses.replace(
                base, name=f"thread_id={odd[:24]} in the body", body=json.dumps({**valid, "thread_id": odd}).encode()
            )
    if valid is not None:
        for name, raw in BAD_BODIES:
            yield dataclasses.replace(base, name=name, body=raw)
        for key in valid:
            wrong: list[Any] = [{"x": []}, [1], 7, "", None]
            for w in wrong:
                yield dataclasses.replace(base, name=f"{key} as {w!r}", body=json.dumps({**valid, key: w}).encode())


def worker_cases(route_key: str, method: str, template_path: str, ids: dict[str, str]) -> Iterator[Case]:
    """The worker API: the route's worker key, never a tenant's; odd queues and offers; bad batches."""
    path = fill(template_path, ids)
    valid = VALID_BODY.get(route_key)
    base = Case("", route_key, method, path, body=None if valid is None else json.dumps(valid).encode(), auth=WORKER)
    for name, auth in [
        ("no credentials", None),
        ("a tenant's API key", DEV),
        ("another tenant's API key", OTHER_TENANT),
        ("wrong key", "Bearer tw_wrong_key_0123456789abcdef"),
        ("basic auth", "Basic Zm9vOmJhcg=="),
        ("key of 5000 chars", "Bearer " + "k" * 5000),
    ]:
        yield dataclasses.replace(base, name=name, auth=auth)
    for odd in [*ODD_IDS, "other-q"]:
        yield dataclasses.replace(base, name=f"queue={odd[:24]}", path=fill(template_path, {**ids, "queue": odd}))
    if valid is None:
        return
    yield dataclasses.replace(base, name="an offer that is not there")
    for odd in ODD_IDS:
        yield dataclasses.replace(base, name=f"offer_id={odd[:24]}", path=fill(template_path, {**ids, "offer_id": odd}))
    for name, raw in BAD_BODIES:
        yield dataclasses.replace(base, name=name, body=raw)
    spoiled: list[tuple[str, Any]] = [
        ("token", ""),
        ("token", 7),
        ("events", [["shout", "x"]]),
        ("events", [["text"]]),
        ("events", "text"),
        ("events", [["text", "x"]] * 501),
        ("usage", {"output_tokens": -1}),
        ("usage", {"output_tokens": "9"}),
        ("reason", "bored"),
        ("error", 5),
        ("surprise", 1),
    ]
    for key, value in spoiled:
        if key in valid or key in ("usage", "reason", "error", "surprise") and route_key.endswith("/finish"):
            yield dataclasses.replace(
                base, name=f"{key} as {str(value)[:20]}", body=json.dumps({**valid, key: value}).encode()
            )


def cases_for(route_key: str, method: str, template_path: str, ids: dict[str, str]) -> Iterator[Case]:
    path = fill(template_path, ids)
    valid = VALID_BODY.get(route_key)
    body = None if valid is None else json.dumps(valid).encode()
    query = VALID_QUERY.get(route_key, {})
    base = Case("", route_key, method, path, dict(query), dict(VALID_HEADERS.get(route_key, {})), body)

    def case(name: str, **changes: Any) -> Case:
        if "headers" in changes:  # spoil one header, keep the others a valid call sends
            changes["headers"] = {**base.headers, **changes["headers"]}
        return Case(**{**base.__dict__, "name": name, **changes})

    for name, auth in [
        ("no credentials", None),
        ("wrong key", "Bearer ts_wrong_key_0123456789abcdef"),
        ("basic auth", "Basic Zm9vOmJhcg=="),
        ("key of 5000 chars", "Bearer " + "k" * 5000),
        ("bearer with no key", "Bearer"),
    ]:
        yield case(name, auth=auth)
    for name, value in [
        ("end user of 5000 chars", "u" * 5000),
        ("end user not ASCII", "b\u00f6b\u202e"),
    ]:
        # A valid call otherwise: the only thing wrong is the end user's name.
        yield case(name, headers={"X-On-Behalf-Of": value.encode()})
    if route_key in IDEMPOTENT:
        for name, value in [("idempotency key of 5000 chars", "i" * 5000), ("idempotency key not ASCII", "k\u00e9y")]:
            yield case(name, headers={"Idempotency-Key": value.encode()})
    for header, values in BAD_HEADERS.get(route_key, {}).items():
        for value in values:
            yield case(f"{header}: {value[:20]}", headers={header: value})
    for param, values in BAD_QUERY.get(route_key, {}).items():
        for value in values:
            yield case(f"?{param}={value[:20]!r}", query={**query, param: value})
    if ids:
        yield case("another tenant's ids", auth=OTHER_TENANT)
        yield case("another end user's ids", headers={"X-On-Behalf-Of": "mallory"})
        for param in ids:
            for odd in ODD_IDS:
                yield case(f"{param}={odd[:24]}", path=fill(template_path, {**ids, param: odd}))
    if valid is not None:  # a route that reads no body ignores one (a DELETE's, the llm cancel's)
        for name, raw in BAD_BODIES:
            yield case(name, body=raw)
        for key, value in valid.items():
            wrong: list[Any] = ["text", [1]] if isinstance(value, dict) else [{"x": []}, [1]]
            for w in wrong:
                yield case(f"{key} as {type(w).__name__}", body=json.dumps({**valid, key: w}).encode())


BAD_BODIES: list[tuple[str, bytes]] = [
    ("malformed JSON", b"{"),
    ("truncated JSON", b'{"input": "ab'),
    ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000),
    ("objects nested 5,000 deep", b'{"a":' * 5000 + b"1" + b"}" * 5000),
    ("a 5,000-digit integer", b'{"n": ' + b"9" * 5000 + b"}"),
    ("a huge float", b'{"n": 1e999999}'),
    ("NaN", b'{"n": NaN}'),
    ("not UTF-8", b'{"input": "\xff\xfe"}'),
    ("a lone surrogate", b'{"input": "\\ud800"}'),
    ("a JSON array", b"[]"),
    ("a JSON string", b'"hello"'),
    ("JSON null", b"null"),
    ("a number", b"42"),
    ("over the body limit", json.dumps({"input": "x" * (MAX_BODY + 1)}).encode()),
]


def all_cases(world_ids: dict[str, dict[str, str]], chat_thread: str) -> list[Case]:
    out: list[Case] = []
    for route in ROUTES:
        methods = ["GET", "POST", "DELETE"] if route.method == "ANY" else [route.method]
        for method in methods:
            ids = world_ids[route.route_key]
            if route.path.startswith("/auth/"):
                out.extend(sign_in_cases(route.route_key, method, route.path))
            elif route.path.startswith("/v1/workers/"):
                out.extend(worker_cases(route.route_key, method, route.path, ids))
            elif route.path.startswith(COOKIE_ROUTES):
                out.extend(cookie_cases(route.route_key, method, route.path, ids, chat_thread))
            else:
                out.extend(cases_for(route.route_key, method, route.path, ids))
    return out


# ----------------------------------------------------------------- the store, before and after


@dataclass(frozen=True)
class StoreView:
    """What a snapshot reads: the table and the queues of a running instance."""

    ddb: Any
    sqs: Any
    table: str
    queues: list[str]


def snapshot(world: World | StoreView) -> dict[str, Any]:
    items: list[str] = []
    kwargs: dict[str, Any] = {"TableName": world.table, "ConsistentRead": True}
    while True:
        page = world.ddb.scan(**kwargs)
        items.extend(json.dumps(unmoving(item), sort_keys=True, default=str) for item in page["Items"] if moves(item))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    queues = {}
    for url in world.queues:
        attrs = world.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        queues[url.rsplit("-", 1)[-1]] = sum(
            int(attrs.get(a, 0))
            for a in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            )
        )
    return {"items": sorted(items), "queues": queues}


def moves(item: dict[str, Any]) -> bool:
    """Request counts of the chat's rate limit change with every signed-in request, by design."""
    return not str(item["pk"]["S"]).startswith("RATE#")


def unmoving(item: dict[str, Any]) -> dict[str, Any]:
    """A browser session without the idle expiry that use pushes forward (by design)."""
    if str(item["pk"]["S"]).startswith("COOKIE#"):
        return {k: v for k, v in item.items() if k not in ("last_seen", "idle_expires_at")}
    return item


def quiet(world: World | StoreView) -> dict[str, Any]:
    """The store once nothing is moving: queues empty and two looks in a row alike."""
    last: list[dict[str, Any]] = [snapshot(world)]

    def settled() -> dict[str, Any] | None:
        now = snapshot(world)
        same = now == last[0] and not any(now["queues"].values())
        last[0] = now
        return now if same else None

    return wait_for(settled, "the store to settle", timeout=120)


# ----------------------------------------------------------------- sending


def send(client: httpx.Client, world: World, case: Case) -> httpx.Response:
    keys = (
        world.admin_keys if case.path.startswith("/v1/admin/") else {DEV: world.api.key, OTHER_TENANT: world.other_key}
    )
    keys = {**keys, WORKER: WORKER_KEY}
    headers: dict[str, str | bytes] = {"X-On-Behalf-Of": "alice"}
    if case.body is not None:
        headers["Content-Type"] = "application/json"
    if case.path.startswith(COOKIE_ROUTES) and case.auth in world.cookies:
        headers["Cookie"] = f"session_id={world.cookies[case.auth]}"
    elif case.auth is not None:
        headers["Authorization"] = f"Bearer {keys[case.auth]}" if case.auth in keys else case.auth
    headers.update(case.headers)
    query = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in case.query.items())
    raw = [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in headers.items()]
    return client.request(case.method, case.path + ("?" + query if query else ""), headers=raw, content=case.body)


def test_every_route_answers_hostile_input_with_a_4xx_in_its_dialects_shape_and_changes_nothing(world: World) -> None:
    cases = all_cases(world.ids, world.chat_thread)
    assert len({c.route for c in cases}) == len(ROUTES)
    before = quiet(world)
    problems: list[str] = []
    # Four at a time, as concurrent callers would: every case is refused, so their order cannot matter.
    with httpx.Client(base_url=world.api.url, timeout=60) as client, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda case: send(client, world, case), cases))
        for case, r in zip(cases, answers, strict=True):
            where = f"{case.method} {case.path[:60]} [{case.name}] -> {r.status_code} {r.text[:160]!r}"
            if r.status_code >= 500:
                problems.append("5xx: " + where)
            elif r.status_code < 400:
                problems.append("accepted: " + where)
            elif r.status_code >= 400:
                try:
                    body = r.json()
                except ValueError:
                    body = None
                if not shape_of(case.path)(body):
                    problems.append("shape: " + where)
    after = quiet(world)
    assert not problems, f"{len(problems)} of {len(cases)} cases:\n" + "\n".join(problems)
    assert after["queues"] == before["queues"]
    changed = set(after["items"]) ^ set(before["items"])
    assert not changed, "the store changed:\n" + "\n".join(sorted(changed)[:20])


def raw_request(url: str, head: bytes) -> bytes:
    """Bytes no HTTP client library would send, straight onto the socket; the reply's head."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=30) as sock:
        sock.sendall(head)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize("value", [b"ok\x01bad", b"a" * 300, b"x\x7fy", b"\xc3\xa9t\xc3\xa9", b"req-42_ok"])
def test_a_request_id_is_echoed_only_when_it_is_short_printable_ascii(world: World, value: bytes) -> None:
    for route in ROUTES:
        path = fill(route.path, world.ids[route.route_key])
        head = (
            f"{route.method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {world.api.key}\r\n".encode()
            + b"X-Request-Id: "
            + value
            + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        reply = raw_request(world.api.url, head)
        status = int(reply.split(b" ", 2)[1])
        assert status < 500, (route.route_key, reply)
        echoed = [
            line.split(b":", 1)[1].strip() for line in reply.split(b"\r\n") if line.lower().startswith(b"x-request-id:")
        ]
        assert len(echoed) == 1, (route.route_key, reply)  # every answer names its request
        if value == b"req-42_ok":
            assert echoed == [value], (route.route_key, reply)
        else:
            assert echoed[0] != value and echoed[0].decode("ascii").isprintable(), (route.route_key, reply)
