"""Issuing credentials (operators, the local runtime, the command line): API keys, stored
hashed, and tenants' webhook signing secrets. Resolving a key at request time is
``auth/principals.py``."""

from __future__ import annotations

import secrets

from turnstop.core.ids import new_id
from turnstop.core.records import Credential
from turnstop.store import Store

KEY_PREFIX = "ts_"


def create_api_key(
    table_name: str,
    tenant: str,
    account_ids: list[int],
    key: str | None = None,
    name: str = "",
    store: Store | None = None,
    admin: bool = False,
) -> str:
    """Store a key (hashed) for a tenant and the accounts it may act for; return the plaintext.
    An ``admin`` key may also use the admin endpoints (bulk cancels) for its tenant."""
    secret = key or KEY_PREFIX + secrets.token_urlsafe(32)
    store = store or Store(table_name)
    cred = Credential(tenant=tenant, account_ids=tuple(account_ids), key_id=new_id("key_"), name=name, admin=admin)
    store.credentials.put(secret, cred)
    return secret


WEBHOOK_SECRET_PREFIX = "whsec_"


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


def ensure_webhook_secret(
    table_name: str, tenant: str, secret: str | None = None, *, replace: bool = False, store: Store | None = None
) -> str | None:
    """Give a tenant the secret its task callbacks are signed with. Returns the secret when this
    call stored it (to be shown once), None when the tenant already had one (kept, unless
    ``replace``)."""
    store = store or Store(table_name)
    value = secret or new_webhook_secret()
    return value if store.callbacks.put_secret(tenant, value, only_if_absent=not replace) else None
