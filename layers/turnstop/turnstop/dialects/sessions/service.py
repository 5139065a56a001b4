"""The sessions dialect's operations on the shared core: sessions, turns, cancel, streams."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from turnstop.auth import Principal
from turnstop.core import errors
from turnstop.core.clock import iso
from turnstop.core.ids import matches, new_id
from turnstop.core.turn import CancelOutcome, CancelRequest, Turn
from turnstop.dialects.sessions.renderer import SESSION_KIND, STATELESS_KIND, created_event
from turnstop.http.sse import StreamingResponse, stream_response
from turnstop.runtime.model import count_tokens
from turnstop.settings import Settings
from turnstop.store.dynamo import IdempotencyClaim, IdempotentReplay, NewTurn, Store

SESSION_PREFIX = "sess_"
MESSAGE_PREFIX = "msg_"
RESPONSE_PREFIX = "resp_"


def session_scope(session_id: str) -> str:
    return f"session:{session_id}"


STATELESS_SCOPE = "stateless"


def check_session_id(session_id: str) -> None:
    if not matches(SESSION_PREFIX, session_id):
        raise errors.NotFound("Session not found")


def check_rid(rid: str, kind: str) -> None:
    prefix = MESSAGE_PREFIX if kind == SESSION_KIND else RESPONSE_PREFIX
    if not matches(prefix, rid):
        raise errors.NotFound("Response not found")


def create_session(store: Store, settings: Settings, principal: Principal, persistent: bool) -> dict[str, Any]:
    lifetime_ms = int(
        settings.persistent_session_days * 86_400_000 if persistent else settings.ephemeral_session_hours * 3_600_000
    )
    s = store.create_session(new_id(SESSION_PREFIX), principal.tenant, persistent, lifetime_ms)
    return {
        "id": s.id,
        "object": "session",
        "persistent": s.persistent,
        "created_at": iso(s.created_at),
        "expires_at": iso(s.expires_at),
    }


def destroy_session(store: Store, principal: Principal, session_id: str) -> dict[str, Any]:
    """Cancel the session's in-flight turn, then mark the session deleted.

    Two entities, two conditional writes, ordered so that a crash between them leaves a
    cancelled turn in a live session (a retried DELETE finishes the job), never a deleted
    session whose turn keeps running. A turn that started in between is cancelled too.
    """
    check_session_id(session_id)
    session = store.get_session(session_id)
    if session is None or not session.live(principal.tenant, store.now()):
        raise errors.NotFound("Session not found")
    cancelled = _cancel_for_delete(store, principal, session_id, session.active_turn)
    before = store.destroy_session(session_id, principal.tenant)
    if before.active_turn and before.active_turn != session.active_turn:
        cancelled = _cancel_for_delete(store, principal, session_id, before.active_turn) or cancelled
    return {"id": session_id, "object": "session", "deleted": True, "cancelled_response_id": cancelled}


def _cancel_for_delete(store: Store, principal: Principal, session_id: str, turn_id: str | None) -> str | None:
    if not turn_id:
        return None
    outcome, _ = store.request_cancel(
        turn_id,
        tenant=principal.tenant,
        scope=session_scope(session_id),
        req=CancelRequest(reason="session deleted", actor=principal.key_id, source="session_delete"),
    )
    return turn_id if outcome in (CancelOutcome.CANCELLED, CancelOutcome.CANCELLING) else None


def start_turn(
    store: Store,
    settings: Settings,
    principal: Principal,
    *,
    prompt: str,
    session_id: str | None,
    idempotency: IdempotencyClaim | None,
) -> Turn:
    """Create (or, for a repeated Idempotency-Key, find) the turn and queue it for a worker."""
    if session_id is not None:
        check_session_id(session_id)
    kind = SESSION_KIND if session_id else STATELESS_KIND
    new = NewTurn(
        id=new_id(MESSAGE_PREFIX if session_id else RESPONSE_PREFIX),
        kind=kind,
        tenant=principal.tenant,
        scope=session_scope(session_id) if session_id else STATELESS_SCOPE,
        grace_ms=settings.grace_ms,
        input={"prompt": prompt},
        end_user=principal.end_user,
        input_tokens=count_tokens(prompt),
    )
    try:
        turn = store.start_turn(new, created_event, session_id=session_id, idempotency=idempotency)
    except IdempotentReplay as replay:
        existing = store.get_visible_turn(replay.turn_id, tenant=principal.tenant, end_user=principal.end_user)
        if existing is None:
            raise errors.NotFound("Response not found") from None
        return existing
    store.enqueue(turn, idempotency)
    return turn


def cancel(
    store: Store, principal: Principal, rid: str, *, session_id: str | None, reason: str | None = None
) -> tuple[int, dict[str, Any]]:
    """202 cancelling while in flight; 200 already_complete once finished; 404 otherwise."""
    kind = SESSION_KIND if session_id else STATELESS_KIND
    if session_id is not None:
        check_session_id(session_id)
    check_rid(rid, kind)
    outcome, _ = store.request_cancel(
        rid,
        tenant=principal.tenant,
        scope=session_scope(session_id) if session_id else STATELESS_SCOPE,
        end_user=principal.end_user,
        req=CancelRequest(reason=reason, actor=principal.key_id, source="api"),
    )
    if outcome is CancelOutcome.NOT_FOUND:
        raise errors.NotFound("Response not found")
    if outcome in (CancelOutcome.CANCELLED, CancelOutcome.CANCELLING, CancelOutcome.ALREADY_CANCELLING):
        return 202, {"response_id": rid, "status": "cancelling"}
    return 200, {"response_id": rid, "status": "already_complete"}


def find_turn(store: Store, principal: Principal, rid: str, session_id: str | None) -> Turn:
    kind = SESSION_KIND if session_id else STATELESS_KIND
    if session_id is not None:
        check_session_id(session_id)
    check_rid(rid, kind)
    scope = session_scope(session_id) if session_id else STATELESS_SCOPE
    turn = store.get_visible_turn(rid, tenant=principal.tenant, kinds=(kind,), scope=scope, end_user=principal.end_user)
    if turn is None:
        raise errors.NotFound("Response not found")
    return turn


def parse_after(headers: Mapping[str, str], query: Mapping[str, str]) -> int:
    raw = headers.get("last-event-id") or query.get("after") or "0"
    try:
        after = int(raw)
    except ValueError:
        raise errors.InvalidRequest("Last-Event-ID / after must be a non-negative integer") from None
    if after < 0:
        raise errors.InvalidRequest("Last-Event-ID / after must be a non-negative integer")
    return after


def stream(store: Store, settings: Settings, turn: Turn, after: int, status: int = 200) -> StreamingResponse:
    last = turn.last_readable_seq
    if after > last and turn.terminal:
        raise errors.InvalidRequest(f"Last-Event-ID / after is beyond the last event ({last})")
    return stream_response(store, settings, turn, after, status=status)
