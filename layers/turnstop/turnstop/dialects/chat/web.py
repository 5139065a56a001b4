"""What a browser-facing API needs around its routes: the signed-in user from the
``session_id`` cookie, CSRF checks, CORS with credentials, cookies, and the per-session rate
limit. Every chat function uses these; none of them imports the sign-in (JWT) code."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.shared.cookies import Cookie, SameSite

from turnstop.core import errors
from turnstop.http.body import headers_of
from turnstop.observability import logkeys
from turnstop.platform.settings import Settings
from turnstop.store import Store

log = logging.getLogger(__name__)

SESSION_COOKIE = "session_id"
LOGIN_COOKIE = "turnstop_login"
LOGIN_COOKIE_PATH = "/auth"
MAX_COOKIE_CHARS = 256
# A session's idle expiry is pushed forward at most this often (one write), not on every request.
TOUCH_EVERY_MS = 60_000
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = ("content-type", "x-request-id")
EXPOSED_HEADERS = "X-Request-Id, X-Thread-Id, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
PREFLIGHT_MAX_AGE_S = 600
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
NOT_SIGNED_IN = "Not authenticated: sign in through /auth/login to get a valid session_id cookie"


@dataclass(frozen=True)
class ChatUser:
    """Who is calling: the tenant the chat serves, the provider's user, their session."""

    tenant: str
    user: str
    name: str
    session: str  # the session's digest (what the rate limit counts by)


def cookies_of(event: Mapping[str, Any]) -> dict[str, str]:
    """The request's cookies: payload 2.0 puts them apart (``cookies``), a Cookie header too."""
    raw = [str(c) for c in event.get("cookies") or []]
    header = headers_of(event).get("cookie")
    if header:
        raw.extend(header.split(";"))
    jar: dict[str, str] = {}
    for cookie in raw:
        name, sep, value = cookie.strip().partition("=")
        if sep and name and name not in jar:
            jar[name] = value.strip()
    return jar


def request_origin(event: Mapping[str, Any]) -> str:
    """The origin this request was sent to (scheme and host, as the client saw them)."""
    headers = headers_of(event)
    host = headers.get("host") or str((event.get("requestContext") or {}).get("domainName") or "")
    proto = headers.get("x-forwarded-proto", "https").split(",")[0].strip().lower() or "https"
    return f"{proto}://{host}"


def secure_cookies(event: Mapping[str, Any]) -> bool:
    """Cookies are ``Secure`` except on plain http to this machine (the local runtime)."""
    origin = urlsplit(request_origin(event))
    return not (origin.scheme == "http" and (origin.hostname or "") in LOOPBACK_HOSTS)


def _origin_of(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else url.strip().lower()


class Origins:
    """Which browser origins may call: the API's own, ``TURNSTOP_PUBLIC_BASE_URL``'s, and
    ``TURNSTOP_ALLOWED_ORIGINS`` (comma-separated; ``http://localhost:*`` allows any port)."""

    def __init__(self, settings: Settings) -> None:
        listed = [p.strip().rstrip("/").lower() for p in settings.allowed_origins.split(",") if p.strip()]
        if settings.public_base_url:
            listed.append(_origin_of(settings.public_base_url))
        self.patterns = tuple(listed)

    def allows(self, origin: str, event: Mapping[str, Any]) -> bool:
        origin = origin.strip().lower()
        if origin == request_origin(event).lower():
            return True
        for pattern in self.patterns:
            if pattern == origin:
                return True
            if pattern.endswith(":*"):
                base = pattern[:-2]
                port = origin.removeprefix(base + ":") if origin.startswith(base + ":") else None
                if origin == base or (port is not None and port.isdigit() and len(port) <= 5):
                    return True
        return False

    def cors_headers(self, event: Mapping[str, Any]) -> dict[str, str]:
        """CORS with credentials for an allowed origin; nothing that lets another read it."""
        origin = headers_of(event).get("origin")
        if not origin or not self.allows(origin, event):
            return {"Vary": "Origin"}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Expose-Headers": EXPOSED_HEADERS,
            "Vary": "Origin",
        }

    def check_state_change(self, event: Mapping[str, Any]) -> None:
        """CSRF: a request that changes state must come from an allowed origin (when the
        browser names one) and be ``application/json``, which a form or a simple
        cross-site request cannot send without a preflight."""
        headers = headers_of(event)
        origin = headers.get("origin")
        if origin is not None and not self.allows(origin, event):
            raise errors.Forbidden(f"Origin {origin!r} is not allowed to call this API")
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise errors.Forbidden("State-changing requests must be sent with Content-Type: application/json")

    def preflight(self, event: Mapping[str, Any]) -> Response:
        """Answer a CORS preflight from an allowed origin for a method and headers we serve."""
        headers = headers_of(event)
        origin = headers.get("origin")
        if not origin or not self.allows(origin, event):
            raise errors.Forbidden(f"Origin {origin!r} is not allowed to call this API")
        method = headers.get("access-control-request-method", "").strip().upper()
        if method not in ("GET", "POST"):
            raise errors.Forbidden(f"Method {method or '(none)'} is not allowed")
        asked = [h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()]
        if any(h not in ALLOWED_HEADERS for h in asked):
            raise errors.Forbidden("Only the Content-Type and X-Request-Id request headers are allowed")
        return Response(
            status_code=204,
            content_type=None,
            body="",
            headers={
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": "Content-Type, X-Request-Id",
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
            },
        )


def cors(settings: Settings) -> Callable[[Mapping[str, Any]], dict[str, str]]:
    """The resolvers' per-request headers hook."""
    return Origins(settings).cors_headers


def signed_in(event: Mapping[str, Any], store: Store, settings: Settings) -> ChatUser:
    """The user whose session the ``session_id`` cookie names: missing, unknown (forged or
    tampered), expired or signed-out sessions are ``not_authenticated``. Keeps the session
    from going idle (one write at most once a minute)."""
    value = cookies_of(event).get(SESSION_COOKIE)
    if not value or len(value) > MAX_COOKIE_CHARS or not value.isascii():
        raise errors.Unauthenticated(NOT_SIGNED_IN)
    session = store.signins.session(value)
    now = store.now()
    if session is None or not session.active(now):
        raise errors.Unauthenticated(NOT_SIGNED_IN)
    if now - session.last_seen >= TOUCH_EVERY_MS:
        try:
            store.signins.touch(session, int(settings.chat_session_idle_seconds * 1000))
        except Exception:  # the request is served on the session as read; the next one tries again
            log.warning("could not push session %s… idle expiry forward", session.digest[:8], exc_info=True)
    logkeys.bind(tenant=session.tenant)
    return ChatUser(session.tenant, session.user, session.name, session.digest)


def count_request(store: Store, user: ChatUser, limit: int) -> dict[str, str]:
    """Count this request against the session's per-minute limit (one conditional write);
    the rate headers to answer with, or ``rate_limited`` with ``Retry-After`` (and the rate
    headers in its ``rate_headers``)."""
    count = store.rates.hit(f"session#{user.session}", limit)
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, limit - count.count)),
        "X-RateLimit-Reset": str(math.ceil(count.window_ends_at / 1000)),
    }
    if not count.allowed:
        wait_s = max(1, math.ceil((count.window_ends_at - store.now()) / 1000))
        raise errors.RateLimited(
            f"Rate limit exceeded: at most {limit} requests per minute per session; retry in {wait_s} s",
            retry_after=wait_s,
            rate_headers=headers,
        )
    return headers


def cookie(name: str, value: str, event: Mapping[str, Any], *, path: str = "/", max_age: int) -> Cookie:
    """``HttpOnly; SameSite=Lax`` always; ``Secure`` outside local http; ``Max-Age=0`` clears it."""
    return Cookie(
        name=name,
        value=value,
        path=path,
        secure=secure_cookies(event),
        http_only=True,
        max_age=max_age,
        same_site=SameSite.LAX_MODE,
    )
