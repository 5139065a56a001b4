"""API keys: created hashed, resolved into a principal by the authorizer and the functions."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from turnstop.core.ids import new_id
from turnstop.store.dynamo import Credential, Store

KEY_PREFIX = "ts_"
_CACHE_TTL_S = 30.0
_cache: dict[str, tuple[float, Credential | None]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    tenant: str
    account_ids: tuple[int, ...] = ()
    key_id: str = ""
    end_user: str | None = None

    def may_act_for(self, account_id: int) -> bool:
        return account_id in self.account_ids

    def to_context(self) -> dict[str, Any]:
        """The authorizer's context: flat strings, as API Gateway passes them on."""
        return {
            "tenant": self.tenant,
            "account_ids": ",".join(str(a) for a in self.account_ids),
            "key_id": self.key_id,
        }

    @classmethod
    def from_context(cls, ctx: dict[str, Any], end_user: str | None) -> Principal | None:
        if not ctx.get("tenant"):
            return None
        accounts = tuple(int(a) for a in str(ctx.get("account_ids") or "").split(",") if a.strip())
        return cls(str(ctx["tenant"]), accounts, str(ctx.get("key_id", "")), end_user)


def create_api_key(
    table_name: str, tenant: str, account_ids: list[int], key: str | None = None, name: str = "", store: Store | None = None
) -> str:
    """Store a key (hashed) for a tenant and the accounts it may act for; return the plaintext."""
    secret = key or KEY_PREFIX + secrets.token_urlsafe(32)
    store = store or Store(table_name)
    store.put_credential(secret, Credential(tenant=tenant, account_ids=tuple(account_ids), key_id=new_id("key_"), name=name))
    return secret


def bearer_token(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def resolve_key(store: Store, secret: str) -> Credential | None:
    """Look a key up, with a short per-container cache so hot paths stay one write."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(secret)
        if hit and hit[0] > now:
            return hit[1]
    cred = store.get_credential(secret)
    with _cache_lock:
        _cache[secret] = (now + _CACHE_TTL_S, cred)
    return cred


def authenticate(store: Store, headers: dict[str, str]) -> Principal | None:
    token = bearer_token(headers)
    if token is None:
        return None
    cred = resolve_key(store, token)
    if cred is None:
        return None
    end_user = headers.get("x-on-behalf-of") or None
    return Principal(cred.tenant, cred.account_ids, cred.key_id, end_user)


def principal_from_event(event: dict[str, Any], store: Store) -> Principal | None:
    """The caller of a payload-2.0 event: from the authorizer's context when API Gateway ran
    it, else (Function URL streaming, direct invoke) by checking the key here."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    auth = (event.get("requestContext") or {}).get("authorizer") or {}
    ctx = auth.get("lambda")
    if isinstance(ctx, dict) and ("tenant" in ctx or "anonymous" in ctx):
        return Principal.from_context(ctx, headers.get("x-on-behalf-of") or None)
    return authenticate(store, headers)
