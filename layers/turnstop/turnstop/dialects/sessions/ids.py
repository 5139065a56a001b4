"""The sessions dialect's ids and scopes: what every route checks before any store call."""

from __future__ import annotations

from turnstop.core import errors, scopes
from turnstop.core.ids import matches
from turnstop.core.scopes import Scope
from turnstop.dialects.sessions.renderer import SESSION_KIND, STATELESS_KIND

SESSION_PREFIX = "sess_"
MESSAGE_PREFIX = "msg_"
RESPONSE_PREFIX = "resp_"
# An SSE cursor is a plain decimal event id: no sign, no underscores, no spaces.
CURSOR_DIGITS = 12


def check_session_id(session_id: str) -> None:
    if not matches(SESSION_PREFIX, session_id):
        raise errors.NotFound("Session not found")


def kind_and_scope(session_id: str | None) -> tuple[str, Scope]:
    if session_id is None:
        return STATELESS_KIND, scopes.STATELESS
    check_session_id(session_id)
    return SESSION_KIND, scopes.session(session_id)


def check_rid(rid: str, kind: str) -> None:
    if not matches(MESSAGE_PREFIX if kind == SESSION_KIND else RESPONSE_PREFIX, rid):
        raise errors.NotFound("Response not found")
