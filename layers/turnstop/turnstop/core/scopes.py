"""Scopes: the parent a turn belongs to (a session, an account, a thread, ...).

A scope is part of a turn's identity for every read and cancel: a caller names the scope it
asks in, and a turn of another scope is ``not_found`` in the same conditional write. The
stored form is ``<kind>`` or ``<kind>:<key>``; only this module reads or writes it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ScopeKind(enum.StrEnum):
    SESSION = "session"  # sessions dialect: a turn in a session (key: session id)
    STATELESS = "stateless"  # sessions dialect: POST /v1/responses
    OMNI = "omni"  # omni dialect: key is the account id
    LLM = "llm"  # llm dialect: key is "bg" (background, cancellable) or "fg"
    TASKS = "tasks"  # tasks dialect
    CHAT = "chat"  # chat dialect: key is the thread id

    @property
    def dialect(self) -> str:
        """The dialect whose turns have this scope (logs, metrics and turn events name it)."""
        return "sessions" if self in (ScopeKind.SESSION, ScopeKind.STATELESS) else self.value


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    key: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.key}" if self.key else self.kind.value

    @classmethod
    def parse(cls, raw: str) -> Scope:
        kind, _, key = raw.partition(":")
        return cls(ScopeKind(kind), key)

    @property
    def session_id(self) -> str | None:
        """The session whose one-turn-at-a-time slot this turn holds, if any."""
        return self.key if self.kind is ScopeKind.SESSION else None


def session(session_id: str) -> Scope:
    return Scope(ScopeKind.SESSION, session_id)


def omni(account_id: int) -> Scope:
    return Scope(ScopeKind.OMNI, str(account_id))


def chat(thread_id: str) -> Scope:
    return Scope(ScopeKind.CHAT, thread_id)


STATELESS = Scope(ScopeKind.STATELESS)
LLM_BACKGROUND = Scope(ScopeKind.LLM, "bg")
LLM_FOREGROUND = Scope(ScopeKind.LLM, "fg")
TASKS = Scope(ScopeKind.TASKS)
