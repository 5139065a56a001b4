"""The sessions dialect's operations on the shared core: sessions, turns, cancel, streams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from turnstop.auth import Principal
from turnstop.core import errors, scopes
from turnstop.core.events import Event
from turnstop.core.ids import new_id, plausible
from turnstop.core.records import NewTurn
from turnstop.core.tokens import count_tokens
from turnstop.core.turn import CancelOutcome, CancelRequest, Turn
from turnstop.dialects.service import DialectService
from turnstop.dialects.sessions import answers
from turnstop.dialects.sessions.ids import (
    MESSAGE_PREFIX,
    RESPONSE_PREFIX,
    SESSION_PREFIX,
    check_rid,
    check_session_id,
    kind_and_scope,
)
from turnstop.dialects.sessions.renderer import created_event
from turnstop.idempotency.bindings import KeyBinding
from turnstop.runtime.live import LiveTurn, caught_up
from turnstop.runtime.runner import TurnRunner
from turnstop.store.sessions import NO_PREVIOUS


class Sessions(DialectService):
    def create_session(self, principal: Principal, persistent: bool) -> dict[str, Any]:
        s = self.settings
        lifetime_ms = int(
            s.persistent_session_days * 86_400_000 if persistent else s.ephemeral_session_hours * 3_600_000
        )
        session = self.store.sessions.create(
            new_id(SESSION_PREFIX), principal.tenant, persistent, lifetime_ms, principal.end_user
        )
        return answers.session_body(session)

    def destroy_session(self, principal: Principal, session_id: str) -> dict[str, Any]:
        """Cancel the session's in-flight turn, then mark the session deleted.

        Two entities, two conditional writes, ordered so that a crash between them leaves a
        cancelled turn in a live session (a retried DELETE finishes the job), never a deleted
        session whose turn keeps running. A turn that started in between is cancelled too.
        """
        session = self._live_session(principal, session_id)
        cancelled = self._cancel_for_delete(principal, session_id, session.active_turn)
        before = self.store.sessions.destroy(session_id, principal.tenant, principal.end_user)
        if before.active_turn and before.active_turn != session.active_turn:
            cancelled = self._cancel_for_delete(principal, session_id, before.active_turn) or cancelled
        return answers.deleted_session(session_id, cancelled)

    def _live_session(self, principal: Principal, session_id: str) -> Any:
        check_session_id(session_id)
        session = self.store.sessions.get(session_id)
        if session is None or not session.live(principal.tenant, self.store.now(), principal.end_user):
            raise errors.NotFound("Session not found")
        return session

    def _cancel_for_delete(self, principal: Principal, session_id: str, turn_id: str | None) -> str | None:
        if not turn_id:
            return None
        outcome, _ = self.store.turns.request_cancel(
            turn_id,
            tenant=principal.tenant,
            scope=scopes.session(session_id),
            req=CancelRequest(reason="session deleted", actor=principal.key_id, source="session_delete"),
        )
        return turn_id if outcome in (CancelOutcome.CANCELLED, CancelOutcome.CANCELLING) else None

    def start_turn(
        self,
        principal: Principal,
        *,
        prompt: str,
        session_id: str | None,
        idempotency: KeyBinding | None,
        runner: TurnRunner,
        max_duration_ms: int | None = None,
    ) -> tuple[Turn, bool]:
        """Create the turn, running under ``runner``'s lease (the streaming request runs it
        itself), or for a repeated Idempotency-Key find the one it started: (turn, replayed)."""
        kind, scope = kind_and_scope(session_id)
        request: dict[str, Any] = {"prompt": prompt}
        if session_id is not None:  # the turn it follows: its model is sent the conversation so far
            session = self.store.sessions.get(session_id)
            request["previous_turn"] = (session.last_turn if session else None) or NO_PREVIOUS
            if session is not None:  # its message and reply stay the session's conversation as long as it
                request["keep_until"] = session.expires_at
        new = NewTurn(
            id=new_id(MESSAGE_PREFIX if session_id else RESPONSE_PREFIX),
            kind=kind,
            tenant=principal.tenant,
            scope=scope,
            grace_ms=self.settings.grace_ms,
            input=request,
            end_user=principal.end_user,
            input_tokens=count_tokens(prompt),
            max_duration_ms=max_duration_ms,
        )

        def write() -> Turn:
            return self.store.turns.start(
                new, created_event, idempotency=idempotency, run_as=runner.owner, lease_ms=runner.lease_ms
            )

        return self.start(write, principal, idempotency, queue=False)

    def find_turn(self, principal: Principal, rid: str, session_id: str | None) -> Turn:
        kind, scope = kind_and_scope(session_id)
        if session_id is not None:
            self._live_session(principal, session_id)
        check_rid(rid, kind)
        turn = self.store.turns.get_visible(
            rid, tenant=principal.tenant, kinds=(kind,), scope=scope, end_user=principal.end_user
        )
        if turn is None:
            raise errors.NotFound("Response not found")
        return turn

    def run_live(self, turn: Turn, runner: TurnRunner, remaining_ms: Callable[[], int] | None) -> LiveTurn:
        """Run a turn this request just started; its reader gets each event as it comes."""
        channel, running = runner.start(turn, remaining_ms)
        created = created_event(turn)
        return LiveTurn(turn, channel, running, (Event(1, created.type, created.data),))

    def readable_after(self, turn: Turn, after: int) -> Turn:
        """The turn, once ``after`` is a cursor a reader may replay from and follow. A cursor
        past the end is a 400, whether the turn has finished or not (a running turn's cursor
        may lead the store by one flush)."""
        ready = caught_up(self.store, turn, after, self.settings.flush_ms / 1000 + 1)
        if ready is None:
            raise errors.InvalidRequest("Last-Event-ID / after is beyond the last event of this response")
        return ready

    def ledger(self, principal: Principal, response_id: str | None) -> dict[str, Any]:
        """The caller's ledger entries (one turn's with ``response_id``), end-user scoped."""
        if response_id is not None and not plausible(response_id):  # any dialect's id; never a store-key-sized blob
            raise errors.InvalidRequest("response_id must be an id: 1 to 128 letters, digits, '_' or '-'")
        entries = self.store.ledger.entries(principal.tenant, response_id, principal.end_user)
        upstream = None
        if response_id is not None:  # one turn: what its model provider cost the platform (billed or not)
            turn = self.store.turns.get_visible(response_id, tenant=principal.tenant, end_user=principal.end_user)
            upstream = turn.upstream if turn is not None else None
        return answers.ledger(entries, upstream)
