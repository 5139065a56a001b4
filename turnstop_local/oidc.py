"""A development OpenID provider, served by the local runtime so that the chat sign-in runs its
real code exchange and ID-token verification on this machine (Cognito plays this part in AWS).

It listens on 127.0.0.1 (a free port unless ``TURNSTOP_LOCAL_OIDC_PORT``), generates an RS256
key at start, and serves:

- ``/.well-known/openid-configuration``: the discovery document;
- ``/jwks``: the public key;
- ``/authorize``: the authorization code flow with PKCE (S256 only) for its one public client
  (``turnstop-local``) and redirect URIs on this machine. It approves at once the user named by
  ``login_hint`` (default ``dev``): nobody types a password;
- ``/token``: the code exchange. A code is good once, for 60 s, with the verifier whose
  challenge started it and the same redirect URI; the ID token carries ``nonce``.

For testing a relying party's checks, ``/authorize`` takes ``dev_fault`` — the token it then
issues is wrong in one way: ``wrong_audience``, ``wrong_issuer``, ``bad_signature`` (signed with
another key under the published key id), ``unknown_key``, ``expired``, ``wrong_nonce`` — or
``access_denied`` (the user said no). Never something to run outside a developer's machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from turnstop_local.keys import DEV_TENANT

__all__ = ["CLIENT_ID", "DevOidcProvider", "local_chat_environment"]

log = logging.getLogger("turnstop_local.oidc")

CLIENT_ID = "turnstop-local"
PORT_SETTING = "TURNSTOP_LOCAL_OIDC_PORT"
CODE_TTL_S = 60
ID_TOKEN_TTL_S = 300
FAULTS = ("wrong_audience", "wrong_issuer", "bad_signature", "unknown_key", "expired", "wrong_nonce", "access_denied")
_USER = re.compile(r"[A-Za-z0-9._@+-]{1,64}")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class _Grant:
    user: str
    redirect_uri: str
    nonce: str | None
    challenge: str
    expires_at: float
    fault: str | None


class DevOidcProvider:
    """The provider and its HTTP server (a context manager; ``start`` / ``stop`` too)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, client_id: str = CLIENT_ID) -> None:
        self.client_id = client_id
        self.key = _new_key()
        self.kid = secrets.token_hex(8)
        self._grants: dict[str, _Grant] = {}
        self._used: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> DevOidcProvider:
        self._thread = threading.Thread(target=self._server.serve_forever, name="turnstop-oidc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> DevOidcProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ documents

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["none"],
        }

    def jwks(self) -> dict[str, Any]:
        from jwt.algorithms import RSAAlgorithm

        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    # ------------------------------------------------------------------ the flow

    def authorize(self, query: Mapping[str, str]) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        """(status, headers, JSON body): a redirect back to the client with a code (or an
        error), or a 400 when the client or its redirect URI cannot be trusted."""
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id:
            return 400, {}, {"error": "invalid_client", "error_description": "unknown client_id"}
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or parts.hostname not in _LOOPBACK:
            return 400, {}, {"error": "invalid_request", "error_description": "redirect_uri must be on this machine"}

        def back(**params: str) -> tuple[int, dict[str, str], None]:
            if "state" in query:
                params["state"] = query["state"]
            sep = "&" if parts.query else "?"
            return 302, {"Location": redirect_uri + sep + urlencode(params), "Cache-Control": "no-store"}, None

        fault = query.get("dev_fault") or None
        if fault is not None and fault not in FAULTS:
            return back(error="invalid_request", error_description=f"unknown dev_fault {fault}")
        if fault == "access_denied":
            return back(error="access_denied", error_description="the user declined")
        if query.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if "openid" not in query.get("scope", "").split():
            return back(error="invalid_scope", error_description="scope must include openid")
        challenge = query.get("code_challenge", "")
        if query.get("code_challenge_method") != "S256" or not re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge):
            return back(error="invalid_request", error_description="PKCE with S256 is required")
        user = query.get("login_hint") or "dev"
        if not _USER.fullmatch(user):
            return back(error="invalid_request", error_description="login_hint is not a user name")
        code = secrets.token_urlsafe(32)
        grant = _Grant(user, redirect_uri, query.get("nonce"), challenge, time.time() + CODE_TTL_S, fault)
        with self._lock:
            self._grants[code] = grant
        return back(code=code)

    def token(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        code = form.get("code", "")
        with self._lock:
            grant = self._grants.pop(code, None)
            replayed = code in self._used
            self._used.add(code)
        if grant is None or replayed or grant.expires_at < time.time():
            return 400, {"error": "invalid_grant", "error_description": "the code is unknown, used or expired"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {
                "error": "invalid_grant",
                "error_description": "redirect_uri differs from the authorize request",
            }
        verifier = form.get("code_verifier", "")
        if _b64url(hashlib.sha256(verifier.encode()).digest()) != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "code_verifier does not match the challenge"}
        return 200, {
            "access_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_TTL_S,
            "id_token": self.id_token(grant),
        }

    def id_token(self, grant: _Grant) -> str:
        import jwt

        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": grant.user,
            "aud": self.client_id,
            "iat": now,
            "auth_time": now,
            "exp": now + ID_TOKEN_TTL_S,
            "preferred_username": grant.user,
            "email": f"{grant.user}@example.test",
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        key, kid = self.key, self.kid
        match grant.fault:
            case "wrong_audience":
                claims["aud"] = "another-client"
            case "wrong_issuer":
                claims["iss"] = "http://127.0.0.1:1/not-the-issuer"
            case "expired":
                claims["iat"], claims["exp"] = now - 3600, now - 1800
            case "wrong_nonce":
                claims["nonce"] = secrets.token_urlsafe(16)
            case "bad_signature":
                key = _new_key()  # the published kid, another key: the signature cannot verify
            case "unknown_key":
                kid = "not-published"
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _handler_for(provider: DevOidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            target = urlsplit(self.path)
            query = dict(parse_qsl(target.query, keep_blank_values=True))
            if target.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif target.path == "/jwks":
                self._json(200, provider.jwks())
            elif target.path == "/authorize":
                status, headers, body = provider.authorize(query)
                self._answer(status, headers, body)
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True))
            if urlsplit(self.path).path == "/token":
                status, body = provider.token(form)
                self._json(status, body)
            else:
                self._json(404, {"error": "not_found"})

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._answer(status, {"Cache-Control": "no-store"}, body)

        def _answer(self, status: int, headers: dict[str, str], body: dict[str, Any] | None) -> None:
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("oidc %s " + format, self.address_string(), *args)

    return Handler


def local_chat_environment(provider: DevOidcProvider) -> dict[str, str]:
    """What the chat functions are given locally: this provider as their issuer and client,
    the dev tenant, and browser pages on localhost / 127.0.0.1 (any port) as allowed origins."""
    return {
        "TURNSTOP_OIDC_ISSUER": provider.issuer,
        "TURNSTOP_OIDC_CLIENT_ID": provider.client_id,
        "TURNSTOP_CHAT_TENANT": DEV_TENANT,
        "TURNSTOP_ALLOWED_ORIGINS": "http://localhost:*,http://127.0.0.1:*",
    }
