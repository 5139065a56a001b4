"""Settings, parsed once per cold start from the function's environment. Logic never reads os.environ.

Every field is set by ``TURNSTOP_<FIELD NAME IN UPPER CASE>`` (``grace_seconds`` by
``TURNSTOP_GRACE_SECONDS``): the names are derived, never kept by hand. A plain dataclass
with its bounds, not a pydantic model: every function parses it at cold start, and a cancel
function should not pay for building a schema it never uses.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "TURNSTOP_"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """An environment value that does not fit its setting."""


def _bounded(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None) -> Any:
    return field(default=default, metadata={"ge": ge, "gt": gt, "le": le})


@dataclass(frozen=True)
class Settings:
    table: str
    turn_queue_url: str | None = None
    grace_seconds: float = _bounded(120.0, ge=0)
    scripted_step_ms: int = _bounded(30, ge=0)
    # the model routes (docs/models.md): inline JSON or a file's path; unset: the scripted model
    models: str | None = None
    # a running turn: how often its new events are made durable, how soon a flush is forced
    # by size, how often the cancel flag is read between writes (and whether strongly)
    flush_ms: int = _bounded(2000, ge=0)
    flush_bytes: int = _bounded(16_384, gt=0)
    cancel_check_ms: int = _bounded(200, gt=0)
    cancel_check_consistent: bool = False
    lease_seconds: float = _bounded(30.0, gt=0)
    max_body_bytes: int = _bounded(256 * 1024, gt=0)
    # remote workers (docs/agents.md): how long a claim waits for an offer before it answers 204
    worker_claim_wait_ms: int = _bounded(5000, ge=0, le=20_000)
    reader_poll_ms: int = _bounded(50, gt=0)
    reader_max_poll_ms: int = _bounded(1000, gt=0)
    keepalive_seconds: float = _bounded(15.0, gt=0)
    sweep_queued_after_seconds: float = _bounded(300.0, gt=0)
    # longer than the turn queue's visibility timeout, so a re-sent message has had its chance
    sweep_again_after_seconds: float = _bounded(1200.0, gt=0)
    persistent_session_days: float = _bounded(30.0, gt=0)
    ephemeral_session_hours: float = _bounded(1.0, gt=0)
    omni_response_retention_seconds: float = _bounded(86_400.0, gt=0)
    omni_thread_retention_days: float = _bounded(30.0, gt=0)
    llm_retention_seconds: float = _bounded(86_400.0, gt=0)
    # tasks dialect (docs/tasks.md)
    tasks_retention_seconds: float = _bounded(86_400.0, gt=0)
    public_base_url: str | None = None  # the base of a task's links; default: the request's own host
    callback_queue_url: str | None = None
    callback_max_attempts: int = _bounded(6, ge=1, le=50)
    callback_backoff_base_seconds: float = _bounded(30.0, ge=0)
    callback_timeout_seconds: float = _bounded(10.0, gt=0, le=60)
    # http://127.0.0.1 / localhost receivers (on by default only in the local runtime)
    callback_allow_loopback: bool = False
    # bulk cancels (docs/queue-cancel.md): the cancel queue carries their further pages; a page
    # holds this many turns, cancelled this many at a time; an admin request works this long
    # itself before it hands the rest to the queue
    cancel_queue_url: str | None = None
    bulk_cancel_page_size: int = _bounded(100, ge=1, le=1000)
    bulk_cancel_concurrency: int = _bounded(8, ge=1, le=10)  # within a boto3 client's 10 connections
    bulk_cancel_sync_seconds: float = _bounded(10.0, ge=0, le=25)
    # turn events out (docs/architecture.md): the EventBridge bus, or (local runtime) a file
    # that gets one JSON event per line instead
    event_bus_name: str = "default"
    events_file: str | None = None
    # chat dialect (docs/chat.md): sign-in through an OpenID provider, cookie sessions,
    # allowed browser origins, the cancel's rate limit
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_scopes: str = "openid email profile"
    chat_tenant: str = "chat"
    allowed_origins: str = ""  # comma-separated; "http://localhost:*" allows any port of that host
    chat_rate_per_minute: int = _bounded(60, ge=1)
    chat_session_idle_seconds: float = _bounded(8 * 3600.0, gt=0)
    chat_session_max_seconds: float = _bounded(7 * 86_400.0, gt=0)
    chat_thread_retention_days: float = _bounded(30.0, gt=0)

    def __post_init__(self) -> None:
        if len(self.table) < 3:
            raise SettingsError(f"{self.env_name('table')} must name a table")
        if not self.chat_tenant:
            raise SettingsError(f"{self.env_name('chat_tenant')} must name a tenant")
        for f in dataclasses.fields(self):
            value, bounds = getattr(self, f.name), f.metadata
            if isinstance(value, bool) or value is None or not bounds:
                continue
            if (
                (bounds["ge"] is not None and value < bounds["ge"])
                or (bounds["gt"] is not None and value <= bounds["gt"])
                or (bounds["le"] is not None and value > bounds["le"])
            ):
                raise SettingsError(f"{self.env_name(f.name)}={value} is out of range {dict(bounds)}")

    @staticmethod
    def env_name(name: str) -> str:
        return ENV_PREFIX + name.upper()

    @classmethod
    def kinds(cls) -> dict[str, str]:
        """Each setting's type, as written (``int``, ``float``, ``bool``, ``str``, ``str | None``)."""
        return {f.name: str(f.type) for f in dataclasses.fields(cls)}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, kind in cls.kinds().items():
            raw = env.get(cls.env_name(name))
            if raw not in (None, ""):
                values[name] = _parse(cls.env_name(name), kind, str(raw))
        if "table" not in values:
            raise SettingsError(f"{cls.env_name('table')} is required")
        return cls(**values)

    @property
    def grace_ms(self) -> int:
        return int(self.grace_seconds * 1000)

    @property
    def lease_ms(self) -> int:
        return int(self.lease_seconds * 1000)


def _parse(name: str, kind: str, raw: str) -> Any:
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.strip().lower() in _TRUE | _FALSE:
                return raw.strip().lower() in _TRUE
            raise ValueError(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind}") from None
    return raw
