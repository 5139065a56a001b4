"""Who is calling: an API key (or the authorizer's context) resolved into a ``Principal``, through
a bounded per-container cache, and what the authorizer answers. Issuing keys is ``auth/issuing.py``."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from turnstop.core import errors
from turnstop.core.records import Credential
from turnstop.store import Store
from turnstop.store.credentials import hash_secret

MAX_KEY_CHARS = 512
MAX_END_USER_CHARS = 256


@dataclass(frozen=True)
class Principal:
    tenant: str
    account_ids: tuple[int, ...] = ()
    key_id: str = ""
    end_user: str | None = None
    admin: bool = False  # an operator's key: the admin endpoints, for its own tenant only

    def may_act_for(self, account_id: int) -> bool:
        return account_id in self.account_ids

    def to_context(self) -> dict[str, Any]:
        """The authorizer's context: flat strings, as API Gateway passes them on."""
        admin = {"admin": "true"} if self.admin else {}
        return {
            "tenant": self.tenant,
            "account_ids": ",".join(str(a) for a in self.account_ids),
            "key_id": self.key_id,
            **admin,
        }

    @classmethod
    def from_context(cls, ctx: dict[str, Any], end_user: str | None = None) -> Principal | None:
        if not ctx.get("tenant"):
            return None
        accounts = tuple(int(a) for a in str(ctx.get("account_ids") or "").split(",") if a.strip())
        admin = str(ctx.get("admin", "")).lower() == "true"
        return cls(str(ctx["tenant"]), accounts, str(ctx.get("key_id", "")), end_user, admin)


class KeyCache:
    """Recently resolved keys, so hot paths stay one write: keyed by the key's hash (the
    plaintext is never kept), each entry for ``ttl_s``, at most ``size`` entries (the oldest
    go first), so a flood of wrong keys cannot grow it."""

    def __init__(self, ttl_s: float = 30.0, size: int = 1024) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._entries: OrderedDict[str, tuple[float, Credential | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str, now: float) -> tuple[bool, Credential | None]:
        with self._lock:
            hit = self._entries.get(digest)
            if hit is None:
                return False, None
            if hit[0] <= now:
                del self._entries[digest]
                return False, None
            return True, hit[1]

    def put(self, digest: str, cred: Credential | None, now: float) -> None:
        with self._lock:
            self._entries[digest] = (now + self.ttl_s, cred)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


KEY_CACHE = KeyCache()


def bearer_token(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > MAX_KEY_CHARS:
        return None
    return token.strip()


def resolve_key(store: Store, secret: str, cache: KeyCache = KEY_CACHE) -> Credential | None:
    """Look a key up, through the per-container cache."""
    digest = hash_secret(secret)
    now = time.monotonic()
    found, cred = cache.get(digest, now)
    if found:
        return cred
    cred = store.credentials.get(secret)
    cache.put(digest, cred, now)
    return cred


def authenticate(store: Store, headers: dict[str, str]) -> Principal | None:
    """The key's principal (its tenant and accounts), or None for a missing or unknown key."""
    token = bearer_token(headers)
    if token is None:
        return None
    cred = resolve_key(store, token)
    if cred is None:
        return None
    return Principal(cred.tenant, cred.account_ids, cred.key_id, admin=cred.admin)


def end_user_of(headers: dict[str, str]) -> str | None:
    """The end user named by ``X-On-Behalf-Of``: at most 256 printable ASCII characters
    (it is stored with every turn it creates and compared on every read), else a 400."""
    value = headers.get("x-on-behalf-of") or None
    if value is not None and (len(value) > MAX_END_USER_CHARS or not value.isascii() or not value.isprintable()):
        raise errors.InvalidRequest(f"X-On-Behalf-Of must be at most {MAX_END_USER_CHARS} printable ASCII characters")
    return value


def principal_from_event(event: dict[str, Any], store: Store) -> Principal | None:
    """The caller of a payload-2.0 event: from the authorizer's context when API Gateway ran
    it, else (the streaming functions behind the Web Adapter, direct invoke) by checking the key here; with the end
    user it acts for, if any."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    auth = (event.get("requestContext") or {}).get("authorizer") or {}
    ctx = auth.get("lambda")
    if isinstance(ctx, dict) and ("tenant" in ctx or "anonymous" in ctx):
        principal = Principal.from_context(ctx)
    else:
        principal = authenticate(store, headers)
    return None if principal is None else dataclasses.replace(principal, end_user=end_user_of(headers))


def authorizer_answer(event: dict[str, Any], context: dict[str, Any], principal_id: str) -> dict[str, Any]:
    """What the authorizer answers, allowing the request either way (each dialect answers a
    missing or bad key in its own shape): the HTTP API's simple response, or for the REST API
    that streams the SSE routes (a REQUEST authorizer event, with a ``methodArn``) an IAM policy
    allowing that method, with the same context."""
    if event.get("type") == "REQUEST" and event.get("methodArn"):
        statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
        return {
            "principalId": principal_id,
            "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
            "context": context,
        }
    return {"isAuthorized": True, "context": context}
