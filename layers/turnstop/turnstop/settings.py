"""Settings, parsed once per cold start from the function's environment. Logic never reads os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field


class Settings(BaseModel):
    table: str = Field(min_length=3)
    turn_queue_url: str | None = None
    grace_seconds: float = Field(default=120, ge=0)
    scripted_step_ms: int = Field(default=30, ge=0)
    flush_ms: int = Field(default=0, ge=0)
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        names = {
            "table": "TURNSTOP_TABLE",
            "turn_queue_url": "TURNSTOP_TURN_QUEUE_URL",
            "grace_seconds": "TURNSTOP_GRACE_SECONDS",
            "scripted_step_ms": "TURNSTOP_SCRIPTED_STEP_MS",
            "flush_ms": "TURNSTOP_FLUSH_MS",
            "lease_seconds": "TURNSTOP_LEASE_SECONDS",
            "max_body_bytes": "TURNSTOP_MAX_BODY_BYTES",
            "reader_poll_ms": "TURNSTOP_READER_POLL_MS",
            "reader_max_poll_ms": "TURNSTOP_READER_MAX_POLL_MS",
            "keepalive_seconds": "TURNSTOP_KEEPALIVE_SECONDS",
            "sweep_queued_after_seconds": "TURNSTOP_SWEEP_QUEUED_AFTER_SECONDS",
            "sweep_again_after_seconds": "TURNSTOP_SWEEP_AGAIN_AFTER_SECONDS",
            "omni_response_retention_seconds": "TURNSTOP_OMNI_RESPONSE_RETENTION_SECONDS",
            "omni_thread_retention_days": "TURNSTOP_OMNI_THREAD_RETENTION_DAYS",
            "llm_retention_seconds": "TURNSTOP_LLM_RETENTION_SECONDS",
        }
        raw = {field: env[var] for field, var in names.items() if env.get(var) not in (None, "")}
        return cls.model_validate(raw)

    @property
    def grace_ms(self) -> int:
        return int(self.grace_seconds * 1000)

    @property
    def lease_ms(self) -> int:
        return int(self.lease_seconds * 1000)
