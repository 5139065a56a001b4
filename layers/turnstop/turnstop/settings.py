"""Settings, parsed once per cold start from the function's environment. Logic never reads os.environ.

Every field is set by ``TURNSTOP_<FIELD NAME IN UPPER CASE>`` (``grace_seconds`` by
``TURNSTOP_GRACE_SECONDS``): the names are derived, never kept by hand.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field

ENV_PREFIX = "TURNSTOP_"


class Settings(BaseModel):
    table: str = Field(min_length=3)
    turn_queue_url: str | None = None
    grace_seconds: float = Field(default=120, ge=0)
    scripted_step_ms: int = Field(default=30, ge=0)
    # a running turn: how often its new events are made durable, how soon a flush is forced
    # by size, how often the cancel flag is read between writes (and whether strongly)
    flush_ms: int = Field(default=2000, ge=0)
    flush_bytes: int = Field(default=16_384, gt=0)
    cancel_check_ms: int = Field(default=200, gt=0)
    cancel_check_consistent: bool = False
    lease_seconds: float = Field(default=30, gt=0)
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    reader_poll_ms: int = Field(default=50, gt=0)
    reader_max_poll_ms: int = Field(default=1000, gt=0)
    keepalive_seconds: float = Field(default=15, gt=0)
    sweep_queued_after_seconds: float = Field(default=300, gt=0)
    # longer than the turn queue's visibility timeout, so a re-sent message has had its chance
    sweep_again_after_seconds: float = Field(default=1200, gt=0)
    persistent_session_days: float = Field(default=30, gt=0)
    ephemeral_session_hours: float = Field(default=1, gt=0)
    omni_response_retention_seconds: float = Field(default=86_400, gt=0)
    omni_thread_retention_days: float = Field(default=30, gt=0)
    llm_retention_seconds: float = Field(default=86_400, gt=0)
    # tasks dialect (docs/tasks.md)
    tasks_retention_seconds: float = Field(default=86_400, gt=0)
    public_base_url: str | None = None  # the base of a task's links; default: the request's own host
    callback_queue_url: str | None = None
    callback_max_attempts: int = Field(default=6, ge=1, le=50)
    callback_backoff_base_seconds: float = Field(default=30, ge=0)
    callback_timeout_seconds: float = Field(default=10, gt=0, le=60)
    # http://127.0.0.1 / localhost receivers (on by default only in the local runtime)
    callback_allow_loopback: bool = False
    # chat dialect (docs/chat.md): sign-in through an OpenID provider, cookie sessions,
    # allowed browser origins, the cancel's rate limit
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_scopes: str = "openid email profile"
    chat_tenant: str = Field(default="chat", min_length=1)
    allowed_origins: str = ""  # comma-separated; "http://localhost:*" allows any port of that host
    chat_rate_per_minute: int = Field(default=60, ge=1)
    chat_session_idle_seconds: float = Field(default=8 * 3600, gt=0)
    chat_session_max_seconds: float = Field(default=7 * 86_400, gt=0)
    chat_thread_retention_days: float = Field(default=30, gt=0)

    @staticmethod
    def env_name(field: str) -> str:
        return ENV_PREFIX + field.upper()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        raw = {f: env[cls.env_name(f)] for f in cls.model_fields if env.get(cls.env_name(f)) not in (None, "")}
        return cls.model_validate(raw)

    @property
    def grace_ms(self) -> int:
        return int(self.grace_seconds * 1000)

    @property
    def lease_ms(self) -> int:
        return int(self.lease_seconds * 1000)
