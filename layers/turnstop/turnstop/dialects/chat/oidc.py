"""Signing in with OpenID Connect: the authorization code flow with PKCE (S256), against the
provider's discovery document (Cognito in AWS, the local runtime's development provider on
this machine). ID tokens are verified with PyJWT against the provider's JWKS: signature
(RS256 only), issuer, audience, expiry, issued-at, subject, then the nonce. Only the sign-in
function imports this module (PyJWT and cryptography stay out of the other functions).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from turnstop.dialects.chat.wire import InvalidIdToken, ProviderFailed, SignInRefused

DISCOVERY_PATH = "/.well-known/openid-configuration"
HTTP_TIMEOUT_S = 5.0
LEEWAY_S = 30  # clock skew allowed on exp / iat
ALGORITHMS = ["RS256"]  # never taken from the token's own header
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
MAX_RESPONSE_BYTES = 1 << 20
# OAuth errors a token endpoint answers for a bad grant (RFC 6749 5.2); passed on as our code.
GRANT_ERRORS = frozenset({"invalid_grant", "invalid_request", "invalid_client", "unauthorized_client"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier (64 characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, _b64url(hashlib.sha256(verifier.encode()).digest())


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in."""

    subject: str
    name: str


def _http_json(url: str, data: bytes | None = None, timeout: float = HTTP_TIMEOUT_S) -> tuple[int, Any]:
    """(status, parsed JSON) of a GET (or a form POST with ``data``); ProviderFailed when the
    provider cannot be reached or answers something that is not JSON."""
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise ProviderFailed(f"The identity provider's endpoint is not an http(s) URL: {url!r}")
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked above
            status, raw = response.status, response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read(MAX_RESPONSE_BYTES)
    except (urllib.error.URLError, OSError) as e:
        raise ProviderFailed(f"The identity provider could not be reached: {getattr(e, 'reason', e)}") from None
    try:
        return status, json.loads(raw)
    except ValueError:
        raise ProviderFailed(f"The identity provider answered {status} without JSON") from None


class OidcClient:
    """One provider and one client (a public client: PKCE, no secret)."""

    def __init__(self, issuer: str, client_id: str, scopes: str, timeout: float = HTTP_TIMEOUT_S) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.scopes = scopes
        self.timeout = timeout
        self._metadata: ProviderMetadata | None = None
        self._jwks: Any = None
        self._lock = threading.RLock()  # metadata() is called under it too

    def metadata(self) -> ProviderMetadata:
        """The discovery document, read once per container (a failure is retried next time)."""
        with self._lock:
            if self._metadata is None:
                status, doc = _http_json(self.issuer + DISCOVERY_PATH, timeout=self.timeout)
                if status != 200 or not isinstance(doc, dict):
                    raise ProviderFailed(f"The identity provider's discovery document answered {status}")
                try:
                    meta = ProviderMetadata(
                        str(doc["issuer"]).rstrip("/"),
                        str(doc["authorization_endpoint"]),
                        str(doc["token_endpoint"]),
                        str(doc["jwks_uri"]),
                    )
                except KeyError as e:
                    raise ProviderFailed(f"The identity provider's discovery document has no {e}") from None
                if meta.issuer != self.issuer:
                    raise ProviderFailed(f"The discovery document names issuer {meta.issuer!r}, not {self.issuer!r}")
                self._metadata = meta
            return self._metadata

    def authorize_url(
        self, *, redirect_uri: str, state: str, nonce: str, challenge: str, login_hint: str | None = None
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if login_hint:
            params["login_hint"] = login_hint
        endpoint = self.metadata().authorization_endpoint
        return endpoint + ("&" if "?" in endpoint else "?") + urllib.parse.urlencode(params)

    def exchange(self, code: str, verifier: str, redirect_uri: str) -> str:
        """The ID token for an authorization code (with the PKCE verifier that started it)."""
        form = urllib.parse.urlencode(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self.client_id,
                "code_verifier": verifier,
            }
        ).encode()
        status, body = _http_json(self.metadata().token_endpoint, data=form, timeout=self.timeout)
        if status != 200:
            error = str(body.get("error", "")) if isinstance(body, dict) else ""
            if 400 <= status < 500 and error in GRANT_ERRORS:
                raise SignInRefused(f"The identity provider refused the authorization code ({error})", code=error)
            raise ProviderFailed(f"The identity provider's token endpoint answered {status}")
        token = body.get("id_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderFailed("The identity provider's token endpoint returned no ID token")
        return token

    def _jwk_client(self) -> Any:
        import jwt

        with self._lock:
            if self._jwks is None:
                self._jwks = jwt.PyJWKClient(
                    self.metadata().jwks_uri, cache_jwk_set=True, lifespan=300, timeout=self.timeout
                )
            return self._jwks

    def verify(self, id_token: str, nonce: str) -> Identity:
        """The signed-in user, if the ID token is the provider's (signature checked against its
        JWKS), for this client, current, and for this sign-in (nonce). InvalidIdToken
        otherwise, with PyJWT's reason."""
        import jwt

        client = self._jwk_client()
        try:
            key = client.get_signing_key_from_jwt(id_token)
        except jwt.PyJWKClientConnectionError as e:
            raise ProviderFailed(f"The identity provider's keys could not be read: {e}") from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as e:
            raise InvalidIdToken(f"The ID token failed verification: {e}") from None
        try:
            claims = jwt.decode(
                id_token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.client_id,
                issuer=self.metadata().issuer,
                leeway=LEEWAY_S,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.InvalidTokenError as e:
            raise InvalidIdToken(f"The ID token failed verification: {e}") from None
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise InvalidIdToken("The ID token failed verification: its nonce is not this sign-in's")
        if claims.get("token_use", "id") != "id":  # Cognito marks its ID tokens
            raise InvalidIdToken("The ID token failed verification: it is not an ID token")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise InvalidIdToken("The ID token failed verification: it was issued to another party (azp)")
        subject = str(claims["sub"])
        name = claims.get("preferred_username") or claims.get("cognito:username") or claims.get("email") or subject
        return Identity(subject, str(name))


_clients: dict[tuple[str, str, str], OidcClient] = {}
_clients_lock = threading.Lock()


def client_for(issuer: str, client_id: str, scopes: str) -> OidcClient:
    """One client per provider per container, so discovery and keys are fetched once."""
    with _clients_lock:
        key = (issuer, client_id, scopes)
        if key not in _clients:
            _clients[key] = OidcClient(issuer, client_id, scopes)
        return _clients[key]
