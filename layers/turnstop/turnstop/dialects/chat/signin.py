"""Sign-in for the chat dialect: OAuth 2.0 authorization code + PKCE with the provider
(``oidc.OidcClient``), then a server-side session named by the ``session_id`` cookie.

``GET /auth/login`` keeps the sign-in's state, nonce and PKCE verifier server-side under a
random id that a short-lived HttpOnly cookie carries (``turnstop_login``, path ``/auth``, 10
minutes) and redirects to the provider. ``GET /auth/callback`` consumes that sign-in in one
conditional delete (a replayed ``state`` finds nothing), exchanges the code, verifies the ID
token, creates the session (stored hashed, idle and absolute expiry) and redirects.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response

from turnstop.core import errors
from turnstop.core.signin import LoginState, WebSession, secret_hash
from turnstop.dialects.chat import oidc
from turnstop.dialects.chat.answers import SignedIn, SignedOut
from turnstop.dialects.chat.web import (
    LOGIN_COOKIE,
    LOGIN_COOKIE_PATH,
    SESSION_COOKIE,
    ChatUser,
    cookie,
    cookies_of,
    request_origin,
)
from turnstop.dialects.chat.wire import ProviderFailed, SignInRefused
from turnstop.platform.settings import Settings
from turnstop.store import Store

LOGIN_TTL_S = 600
DEFAULT_RETURN_TO = "/auth/session"
MAX_RETURN_TO = 512
MAX_LOGIN_HINT = 128
CALLBACK_PATH = "/auth/callback"
MAX_CODE_CHARS = 2048


def safe_return_to(value: str | None) -> str:
    """Where to send the browser after signing in: a path on this site only (never another
    host: ``//evil.example`` and ``/\\evil.example`` are refused)."""
    if not value:
        return DEFAULT_RETURN_TO
    ok = (
        value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and len(value) <= MAX_RETURN_TO
        and value.isascii()
        and value.isprintable()
    )
    if not ok:
        raise errors.InvalidRequest("return_to must be a path on this site, like /chat")
    return value


def _no_store(location: str) -> dict[str, str]:
    return {"Location": location, "Cache-Control": "no-store"}


class SignIn:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def client(self) -> oidc.OidcClient:
        s = self.settings
        if not s.oidc_issuer or not s.oidc_client_id:
            raise ProviderFailed("Sign-in is not configured (TURNSTOP_OIDC_ISSUER, TURNSTOP_OIDC_CLIENT_ID)")
        return oidc.client_for(s.oidc_issuer, s.oidc_client_id, s.oidc_scopes)

    def redirect_uri(self, event: Mapping[str, Any]) -> str:
        base = (self.settings.public_base_url or "").rstrip("/") or request_origin(event)
        return base + CALLBACK_PATH

    def login(self, event: Mapping[str, Any], query: Mapping[str, str]) -> Response:
        """Start a sign-in: remember it, and send the browser to the provider."""
        return_to = safe_return_to(query.get("return_to"))
        hint = query.get("login_hint") or None
        if hint is not None and (len(hint) > MAX_LOGIN_HINT or not hint.isprintable()):
            raise errors.InvalidRequest(f"login_hint must be at most {MAX_LOGIN_HINT} printable characters")
        verifier, challenge = oidc.pkce_pair()
        login = LoginState(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=verifier,
            redirect_uri=self.redirect_uri(event),
            return_to=return_to,
            expires_at=self.store.now() + LOGIN_TTL_S * 1000,
        )
        url = self.client().authorize_url(
            redirect_uri=login.redirect_uri, state=login.state, nonce=login.nonce, challenge=challenge, login_hint=hint
        )
        secret = secrets.token_urlsafe(32)
        self.store.signins.begin_login(secret, login)
        kept = cookie(LOGIN_COOKIE, secret, event, path=LOGIN_COOKIE_PATH, max_age=LOGIN_TTL_S)
        return Response(status_code=302, content_type=None, body="", headers=_no_store(url), cookies=[kept])

    def callback(self, event: Mapping[str, Any], query: Mapping[str, str]) -> Response:
        """Finish a sign-in: this browser's, once; the code exchanged with the verifier that
        started it; the ID token verified; a new session."""
        secret = cookies_of(event).get(LOGIN_COOKIE)
        state = query.get("state") or ""
        login = self.store.signins.consume_login(secret, state) if secret and state else None
        if query.get("error"):
            error = query["error"]
            code = "access_denied" if error == "access_denied" else "sign_in_failed"
            raise SignInRefused(f"The identity provider did not sign you in ({error[:100]})", code=code)
        code = query.get("code") or ""
        if not code or not state or len(code) > MAX_CODE_CHARS:
            raise SignInRefused("The sign-in callback needs code and state", code="invalid_request")
        if login is None:
            raise SignInRefused(
                "This sign-in is unknown, expired or already used (or the sign-in cookie is missing): "
                "start again at /auth/login",
                code="invalid_state",
            )
        client = self.client()
        identity = client.verify(client.exchange(code, login.verifier, login.redirect_uri), login.nonce)
        value = secrets.token_urlsafe(32)
        now = self.store.now()
        s = self.settings
        max_ms, idle_ms = int(s.chat_session_max_seconds * 1000), int(s.chat_session_idle_seconds * 1000)
        self.store.signins.create_session(
            WebSession(
                digest=secret_hash(value),
                tenant=s.chat_tenant,
                user=identity.subject,
                name=identity.name,
                created_at=now,
                expires_at=now + max_ms,
                idle_expires_at=now + min(idle_ms, max_ms),
                last_seen=now,
            )
        )
        cookies = [
            cookie(SESSION_COOKIE, value, event, max_age=max_ms // 1000),
            cookie(LOGIN_COOKIE, "", event, path=LOGIN_COOKIE_PATH, max_age=0),
        ]
        return Response(
            status_code=302, content_type=None, body="", headers=_no_store(login.return_to), cookies=cookies
        )

    def logout(self, event: Mapping[str, Any], user: ChatUser) -> Response:
        """End the session: its cookie is unknown from now on, and the browser drops it."""
        self.store.signins.end_session(user.session)
        return Response(
            status_code=200,
            content_type="application/json",
            body=json.dumps(SignedOut(signed_in=False).wire(), separators=(",", ":")),
            cookies=[cookie(SESSION_COOKIE, "", event, max_age=0)],
        )

    @staticmethod
    def whoami(user: ChatUser) -> dict[str, Any]:
        return SignedIn(signed_in=True, user=user.user, name=user.name, tenant=user.tenant).wire()
