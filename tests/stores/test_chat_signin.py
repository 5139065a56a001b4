"""Chat sign-in through its resolver (the sign-in function's routes) against the local runtime's
development OpenID provider (real HTTP on 127.0.0.1 for discovery, keys and the code exchange),
run on moto (unit) and on DynamoDB Local (integration): the code flow with PKCE, the session
cookie, and every way a sign-in must fail."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.cases.fixtures import Env
from turnstop.core.signin import secret_hash
from turnstop.dialects.chat.handlers import auth_app
from turnstop.platform.settings import Settings
from turnstop.store import Store
from turnstop_local.oidc import DevOidcProvider

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TENANT = "dev"


@pytest.fixture(scope="module")
def provider() -> Iterator[DevOidcProvider]:
    with DevOidcProvider() as p:
        yield p


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    cookies: list[str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def location(self) -> str:
        return self.headers["location"]

    def cookie(self, name: str) -> str:
        """The Set-Cookie line of ``name``."""
        (line,) = [c for c in self.cookies if c.startswith(name + "=")]
        return line

    def cookie_value(self, name: str) -> str:
        return self.cookie(name).split(";", 1)[0].split("=", 1)[1]

    @property
    def error(self) -> dict[str, str]:
        body = self.json
        assert set(body) == {"error", "message"}, body
        return dict(body)


def attributes(set_cookie: str) -> set[str]:
    return {a.strip() for a in set_cookie.split(";")[1:]}


class SignInApi:
    def __init__(self, env: Env, issuer: str, client_id: str) -> None:
        self.env = env
        self.store = Store(env.store.table, clock=env.clock, dynamodb=env.client)
        self.settings = Settings(
            table=env.store.table,
            oidc_issuer=issuer,
            oidc_client_id=client_id,
            chat_tenant=TENANT,
            allowed_origins="http://localhost:*",
        )
        self.app = auth_app(self.store, self.settings)

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> Answer:
        ev = copy.deepcopy(json.loads((EVENTS / "chat_auth.json").read_text()))
        ev["rawPath"] = path
        ev["requestContext"]["http"].update(method=method, path=path)
        ev["queryStringParameters"] = query or None
        ev["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
        ev["cookies"] = [f"{k}={v}" for k, v in (cookies or {}).items()]
        ev["headers"].update(headers or {})
        ev["body"] = body
        out = self.app.resolve(ev, None)
        return Answer(
            int(out["statusCode"]),
            {k.lower(): str(v) for k, v in (out.get("headers") or {}).items()},
            list(out.get("cookies") or []),
            out.get("body") or "",
        )

    def login(self, hint: str = "alice", **query: str) -> tuple[str, dict[str, str]]:
        """GET /auth/login: (the sign-in cookie's value, the authorize request's parameters)."""
        r = self.call("GET", "/auth/login", query={"login_hint": hint, **query})
        assert r.status == 302, r.text
        return r.cookie_value("turnstop_login"), dict(parse_qsl(urlsplit(r.location).query))

    def sessions(self) -> list[dict[str, Any]]:
        items = self.env.client.scan(TableName=self.env.store.table, ConsistentRead=True)["Items"]
        return [i for i in items if i["pk"]["S"].startswith("COOKIE#")]


def approve(provider: DevOidcProvider, authorize: dict[str, str], fault: str | None = None) -> dict[str, str]:
    """The provider's answer to the browser: the callback's query (code and state, or error)."""
    status, headers, _ = provider.authorize({**authorize, **({"dev_fault": fault} if fault else {})})
    assert status == 302, (status, headers)
    return dict(parse_qsl(urlsplit(headers["Location"]).query))


@pytest.fixture
def signin(env: Env, provider: DevOidcProvider) -> SignInApi:
    return SignInApi(env, provider.issuer, provider.client_id)


def sign_in(signin: SignInApi, provider: DevOidcProvider, user: str = "alice") -> str:
    login, authorize = signin.login(user)
    r = signin.call("GET", "/auth/callback", query=approve(provider, authorize), cookies={"turnstop_login": login})
    assert r.status == 302, r.text
    return r.cookie_value("session_id")


def test_signing_in_runs_the_code_flow_with_pkce_and_sets_a_session_cookie(
    signin: SignInApi, provider: DevOidcProvider
) -> None:
    started = signin.call("GET", "/auth/login", query={"login_hint": "alice", "return_to": "/chat/app"})
    assert started.status == 302 and started.location.startswith(provider.issuer + "/authorize?")
    authorize = dict(parse_qsl(urlsplit(started.location).query))
    assert authorize["response_type"] == "code" and authorize["client_id"] == provider.client_id
    assert authorize["code_challenge_method"] == "S256" and len(authorize["code_challenge"]) == 43
    assert authorize["redirect_uri"] == "http://127.0.0.1:3000/auth/callback" and authorize["login_hint"] == "alice"
    assert len(authorize["state"]) >= 32 and len(authorize["nonce"]) >= 32 and "openid" in authorize["scope"]
    kept = started.cookie("turnstop_login")
    assert attributes(kept) == {"Path=/auth", "Max-Age=600", "HttpOnly", "SameSite=Lax"}  # no Secure on local http
    callback = approve(provider, authorize)
    done = signin.call(
        "GET", "/auth/callback", query=callback, cookies={"turnstop_login": started.cookie_value("turnstop_login")}
    )
    assert done.status == 302 and done.location == "/chat/app"
    session = done.cookie("session_id")
    assert {"Path=/", "HttpOnly", "SameSite=Lax"} <= attributes(session) and "Secure" not in attributes(session)
    assert "Max-Age=0" in attributes(done.cookie("turnstop_login"))  # the sign-in cookie is cleared
    value = done.cookie_value("session_id")
    me = signin.call("GET", "/auth/session", cookies={"session_id": value})
    assert me.json == {"signed_in": True, "user": "alice", "name": "alice", "tenant": TENANT}
    # the store keeps the cookie's hash, never its value
    (item,) = signin.sessions()
    assert item["pk"]["S"] == f"COOKIE#{secret_hash(value)}" and value not in json.dumps(item)


def test_cookies_are_secure_outside_local_http(signin: SignInApi) -> None:
    r = signin.call("GET", "/auth/login", headers={"host": "chat.example.com", "x-forwarded-proto": "https"})
    assert "Secure" in attributes(r.cookie("turnstop_login"))


def test_a_replayed_state_is_refused_and_signs_nobody_in(signin: SignInApi, provider: DevOidcProvider) -> None:
    login, authorize = signin.login()
    callback = approve(provider, authorize)
    assert signin.call("GET", "/auth/callback", query=callback, cookies={"turnstop_login": login}).status == 302
    again = signin.call("GET", "/auth/callback", query=callback, cookies={"turnstop_login": login})
    assert again.status == 400 and again.error["error"] == "invalid_state" and not again.cookies
    assert len(signin.sessions()) == 1


def test_a_replayed_code_is_refused_by_the_provider(signin: SignInApi, provider: DevOidcProvider) -> None:
    login, authorize = signin.login()
    first = approve(provider, authorize)
    assert signin.call("GET", "/auth/callback", query=first, cookies={"turnstop_login": login}).status == 302
    login2, authorize2 = signin.login()
    replay = {"code": first["code"], "state": authorize2["state"]}
    r = signin.call("GET", "/auth/callback", query=replay, cookies={"turnstop_login": login2})
    assert r.status == 400 and r.error["error"] == "invalid_grant"
    assert len(signin.sessions()) == 1


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("wrong_audience", "audience"),
        ("bad_signature", "signature"),
        ("expired", "expired"),
        ("wrong_issuer", "issuer"),
        ("wrong_nonce", "nonce"),
        ("unknown_key", "key"),
    ],
)
def test_an_id_token_that_fails_verification_signs_nobody_in(
    signin: SignInApi, provider: DevOidcProvider, fault: str, reason: str
) -> None:
    login, authorize = signin.login()
    r = signin.call(
        "GET", "/auth/callback", query=approve(provider, authorize, fault), cookies={"turnstop_login": login}
    )
    assert r.status == 401 and r.error["error"] == "invalid_token", r.text
    assert reason in r.error["message"].lower() and not r.cookies
    assert signin.sessions() == []


def test_a_callback_without_this_browsers_sign_in_is_refused(signin: SignInApi, provider: DevOidcProvider) -> None:
    login, authorize = signin.login()
    callback = approve(provider, authorize)
    other, _ = signin.login()
    for cookies in ({}, {"turnstop_login": "forged"}, {"turnstop_login": other}):
        r = signin.call("GET", "/auth/callback", query=callback, cookies=cookies)
        assert r.status == 400 and r.error["error"] == "invalid_state"
    # the right browser can still finish it
    assert signin.call("GET", "/auth/callback", query=callback, cookies={"turnstop_login": login}).status == 302


def test_a_declined_sign_in_and_a_bare_callback_are_clear_errors(signin: SignInApi, provider: DevOidcProvider) -> None:
    login, authorize = signin.login()
    r = signin.call(
        "GET", "/auth/callback", query=approve(provider, authorize, "access_denied"), cookies={"turnstop_login": login}
    )
    assert r.status == 400 and r.error["error"] == "access_denied"
    assert signin.call("GET", "/auth/callback").error["error"] == "invalid_request"


def test_return_to_stays_on_this_site(signin: SignInApi) -> None:
    for bad in ("//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)"):
        r = signin.call("GET", "/auth/login", query={"return_to": bad})
        assert r.status == 400 and r.error["error"] == "invalid_request", bad


def test_signing_out_ends_the_session_and_needs_a_json_post(signin: SignInApi, provider: DevOidcProvider) -> None:
    value = sign_in(signin, provider)
    form = signin.call("POST", "/auth/logout", cookies={"session_id": value}, headers={"content-type": "text/plain"})
    assert form.status == 403
    out = signin.call(
        "POST", "/auth/logout", cookies={"session_id": value}, headers={"content-type": "application/json"}
    )
    assert out.status == 200 and "Max-Age=0" in attributes(out.cookie("session_id"))
    assert signin.call("GET", "/auth/session", cookies={"session_id": value}).status == 401
    assert signin.sessions() == []


def test_an_unreachable_or_missing_provider_is_a_clear_error(env: Env) -> None:
    down = SignInApi(env, "http://127.0.0.1:9", "turnstop-local")
    r = down.call("GET", "/auth/login")
    assert r.status == 502 and r.error["error"] == "identity_provider_error"
    unset = SignInApi(env, "", "")
    assert unset.call("GET", "/auth/login").error["error"] == "identity_provider_error"
