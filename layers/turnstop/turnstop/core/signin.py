"""Signing in with a browser: the server-side session a ``session_id`` cookie names, and the
short-lived state of one OAuth sign-in (authorization code + PKCE). Plain data, no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def secret_hash(secret: str) -> str:
    """What the store keeps of a cookie's value: its SHA-256, never the value itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class WebSession:
    """A signed-in user's session. It ends at ``expires_at`` (absolute, from sign-in) or when
    unused until ``idle_expires_at`` (pushed forward as it is used), or at sign-out."""

    digest: str  # secret_hash of the cookie's value
    tenant: str
    user: str  # the identity provider's subject
    name: str
    created_at: int
    expires_at: int
    idle_expires_at: int
    last_seen: int

    def active(self, now_ms: int) -> bool:
        return now_ms < self.expires_at and now_ms < self.idle_expires_at


@dataclass(frozen=True)
class LoginState:
    """One sign-in in progress, named by a short-lived cookie: what the callback must match
    (``state``), what the ID token must carry (``nonce``) and what proves this client started
    it at the token endpoint (the PKCE ``verifier``)."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    return_to: str
    expires_at: int
