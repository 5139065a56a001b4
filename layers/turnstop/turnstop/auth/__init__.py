"""Auth, by job: who is calling (``principals``: a key or the authorizer's context → a
``Principal``) and issuing credentials (``issuing``: API keys, webhook signing secrets)."""

from turnstop.auth.issuing import (
    KEY_PREFIX,
    WEBHOOK_SECRET_PREFIX,
    create_api_key,
    ensure_webhook_secret,
    new_webhook_secret,
)
from turnstop.auth.principals import (
    KEY_CACHE,
    KeyCache,
    Principal,
    authenticate,
    authorizer_answer,
    bearer_token,
    end_user_of,
    principal_from_event,
    resolve_key,
)

__all__ = [
    "KEY_CACHE",
    "KEY_PREFIX",
    "WEBHOOK_SECRET_PREFIX",
    "KeyCache",
    "Principal",
    "authenticate",
    "authorizer_answer",
    "bearer_token",
    "create_api_key",
    "end_user_of",
    "ensure_webhook_secret",
    "new_webhook_secret",
    "principal_from_event",
    "resolve_key",
]
