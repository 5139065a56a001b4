"""The tasks dialect's cancel endpoint, ``POST /v1/tasks/{task_id}/cancel``, its own function.

One conditional UpdateItem (``Turns.request_cancel``) decides; its answer is the task as it
stands then. With an Idempotency-Key the key is bound first and the answer kept, so a
replay repeats it byte for byte (``store.answers``; see idempotency/answers.py). Only what a
cancel needs is imported (no request models, no runtime, no webhooks).

``POST /v1/tasks/cancel`` cancels by the *create's* Idempotency-Key instead (the header names
the key the task was, or will be, created with): the task it created, answered as above, or a
tombstone, so the task it will create is born cancelled (``202``, no id yet).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aws_lambda_powertools.event_handler import Response

from turnstop.auth import Principal
from turnstop.core import errors, scopes
from turnstop.core.clock import iso
from turnstop.core.turn import CancelOutcome, CancelRequest, Status, Turn
from turnstop.dialects.tasks import ids, views, wire
from turnstop.dialects.tasks.renderer import WIRE_STATUS
from turnstop.dialects.tasks.wire import Answer
from turnstop.http.api import TurnstopResolver, require_principal
from turnstop.http.body import cancel_reason, json_object
from turnstop.idempotency.answers import InProgress, KeptAnswer
from turnstop.idempotency.bindings import KeyBinding
from turnstop.idempotency.keys import Tombstone
from turnstop.idempotency.requests import idempotency_binding, start_key
from turnstop.platform.settings import Settings
from turnstop.store import Store

# a bound cancel key is its request's this long (longer than the cancel function runs)
CANCEL_BINDING_MS = 15_000
# a request waits for a concurrent same-key request's answer this many times this long, then 409s
IN_PROGRESS_POLLS = 40
IN_PROGRESS_POLL_S = 0.05


class TaskCancel:
    def __init__(self, store: Store, sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.sleep = sleep

    def cancel(self, principal: Principal, task_id: str, reason: str | None, idempotency: KeyBinding | None) -> Answer:
        ids.check_task_id(task_id)
        if idempotency is None:
            return self._cancel(principal, task_id, reason)
        held = self._bind(idempotency)
        if held is not None:
            return Answer(held.status, held.body, replayed=True)
        try:
            answer = self._cancel(principal, task_id, reason)
        except BaseException:
            self.store.answers.unbind(idempotency)  # it changed nothing: a retry runs again
            raise
        self.store.answers.keep(idempotency, answer.status, answer.body)
        return answer

    def _bind(self, binding: KeyBinding) -> KeptAnswer | None:
        """None once this request holds the key; the kept answer when another request with the
        same key and body answered first (waiting briefly for one still running)."""
        held = self.store.answers.bind(binding, CANCEL_BINDING_MS)
        for _ in range(IN_PROGRESS_POLLS):
            if not isinstance(held, InProgress):
                break
            self.sleep(IN_PROGRESS_POLL_S)
            held = self.store.answers.get(binding)
            if held is None:  # the other request failed and unbound the key
                held = self.store.answers.bind(binding, CANCEL_BINDING_MS)
        if isinstance(held, InProgress):
            raise errors.Conflict(
                "A request with this Idempotency-Key is still in progress; retry shortly", retryable=True
            )
        return held

    def _cancel(self, principal: Principal, task_id: str, reason: str | None) -> Answer:
        """One conditional write decides; the task is rendered after it."""
        outcome, turn = self.store.turns.request_cancel(
            task_id,
            tenant=principal.tenant,
            scope=scopes.TASKS,
            end_user=principal.end_user,
            req=CancelRequest(reason=reason or None, actor=principal.key_id or None, source="api"),
        )
        return self._answer(outcome, turn)

    def cancel_by_key(self, principal: Principal, key: str, reason: str | None) -> Answer:
        """One conditional write either way: the task the key created, cancelled as above, or a
        tombstone so that the task it will create is born cancelled (202)."""
        found = self.store.tombstones.cancel(
            principal.tenant,
            key,
            scope=scopes.TASKS,
            end_user=principal.end_user,
            req=CancelRequest(reason=reason or None, actor=principal.key_id or None, source="api"),
        )
        if isinstance(found, Tombstone):
            return Answer.of(202, wire.cancelled_before_start(key, found.requested_at))
        if found is None:
            raise errors.NotFound(wire.TASK_NOT_FOUND)
        return self._answer(found.outcome, found.turn)

    def _answer(self, outcome: CancelOutcome, turn: Turn | None) -> Answer:
        if outcome is CancelOutcome.NOT_FOUND or turn is None:
            raise errors.NotFound(wire.TASK_NOT_FOUND)
        turn = self.store.turns.with_input(turn)  # decided; read the request to render the task
        if outcome is CancelOutcome.CANCELLED:  # it was queued: cancelled at once, nothing ran
            return Answer.of(200, views.task(self.store, turn))
        if outcome is CancelOutcome.CANCELLING:  # it runs: it stops cancelled at its next step
            return Answer.of(202, views.task(self.store, turn))
        if outcome is CancelOutcome.ALREADY_CANCELLING:
            note = wire.warning(
                "cancel_already_requested",
                f"A cancel was already requested at {iso(turn.cancel_requested_at)}; this request changed nothing",
                "cancel_requested_at",
            )
            return Answer.of(202, views.task(self.store, turn, [note]))
        final = WIRE_STATUS[turn.status]
        verb = "been cancelled" if turn.status is Status.CANCELLED else final
        note = wire.warning("already_terminal", f"The task had already {verb}; nothing was changed", "status")
        return Answer.of(200, views.task(self.store, turn, [note]))


def tasks_cancel_app(store: Store, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> TurnstopResolver:
    """``sleep`` paces the wait for a concurrent request with the same Idempotency-Key (tests)."""
    tasks = TaskCancel(store, sleep)
    app = TurnstopResolver(wire.SHAPE)

    @app.post("/v1/tasks/<task_id>/cancel")
    def cancel(task_id: str) -> Response:
        ids.strict_request_id(app.event)
        principal = require_principal(app.event, store)
        reason = cancel_reason(
            json_object(app.event, settings.max_body_bytes, wire.BODY_MESSAGES, optional=True), others=False
        )
        idempotency = idempotency_binding(app.event, principal.tenant, principal.end_user)
        return tasks.cancel(principal, task_id, reason, idempotency).response()

    @app.post("/v1/tasks/cancel")
    def cancel_by_key() -> Response:
        ids.strict_request_id(app.event)
        principal = require_principal(app.event, store)
        reason = cancel_reason(
            json_object(app.event, settings.max_body_bytes, wire.BODY_MESSAGES, optional=True), others=False
        )
        return tasks.cancel_by_key(principal, start_key(app.event), reason).response()

    return app
