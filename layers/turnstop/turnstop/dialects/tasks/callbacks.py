"""Task callbacks: queued after a task's finish, delivered signed by their own function.

Trigger: the finishing transaction writes the callback's outbox item (``TaskRenderer``), and
the worker's after-finish hook queues a message for it (``after_finish``). If the worker dies
between the two, or the message is lost, the item is still pending and the sweeper re-sends it
once its ``redrive_at`` passes; nothing is lost, only late.

Delivery (``Deliverer.deliver``, one queue message): an attempt is started with a conditional
write that takes a lease on the item (due, nobody else sending, attempt n → n + 1), the task
is rendered as it stands, signed and POSTed (SSRF guard first, 10 s deadline). A 2xx records
``delivered`` (conditional on this very attempt: at most one ``delivered``); anything else
records ``last_error`` and queues the next attempt with exponential backoff (SQS
``DelaySeconds``), or ``failed`` after the last one. Duplicate messages find the callback
settled, not due or leased, and do nothing. The unavoidable window: a receiver may answer 2xx
and the sender die before recording it; the attempt is then retried and the receiver sees the
same ``Turnstop-Event-Id`` twice. Receivers dedupe by it.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json, StrictStr

from turnstop import webhooks
from turnstop.core.turn import Turn, TurnEnd
from turnstop.dialects.tasks import wire
from turnstop.dialects.tasks.renderer import KIND
from turnstop.platform.settings import Settings
from turnstop.store import Store
from turnstop.store.callbacks import REDRIVE_AFTER_MS, Callback

USER_AGENT = "turnstop-webhooks/1"
LEASE_MARGIN_MS = 20_000  # an attempt's lease outlasts its HTTP deadline by this much
MAX_DELAY_S = 900  # SQS's longest DelaySeconds

Post = Callable[[webhooks.Target, bytes, dict[str, str], float], webhooks.Delivery]


class CallbackMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_id: StrictStr = Field(min_length=1, max_length=128)


class CallbackRecord(SqsRecordModel):
    body: Json[CallbackMessage]


def after_finish(store: Store) -> Callable[[Turn, TurnEnd], None]:
    """The worker's hook: queue the callback of a task that just finished (if it has one)."""

    def hook(turn: Turn, end: TurnEnd) -> None:
        if turn.kind == KIND and turn.input.get("callback_url"):
            store.callbacks.send(turn.id)

    return hook


def backoff_s(base_s: float, attempt: int) -> int:
    """The wait after failed attempt ``attempt`` (1-based): base, 2·base, 4·base, ... ≤ 900 s."""
    return min(MAX_DELAY_S, math.ceil(base_s * 2 ** (attempt - 1)))


class Deliverer:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        owner: str | None = None,
        resolve: webhooks.Resolve = webhooks.system_resolve,
        post: Post = webhooks.post,
    ) -> None:
        self.store = store
        self.settings = settings
        self.owner = owner or f"cb-{uuid.uuid4().hex[:12]}"
        self.resolve = resolve
        self.post = post

    @property
    def lease_ms(self) -> int:
        return int(self.settings.callback_timeout_seconds * 1000) + LEASE_MARGIN_MS

    def deliver(self, task_id: str) -> str:
        """Try the task's callback once if it is due; returns what happened."""
        cb = self.store.callbacks.get(task_id)
        if cb is None:
            return "missing"
        if cb.done:
            return f"already_{cb.status}"
        if not cb.due(self.store.now()):
            return "not_due"  # another message is sending it, or its backoff has not passed
        mine = self.store.callbacks.begin_attempt(cb, self.owner, self.lease_ms, REDRIVE_AFTER_MS)
        if mine is None:
            return "taken"
        result = self._attempt(mine)
        if result.ok:
            return "delivered" if self.store.callbacks.delivered(mine) else "lease_lost"
        if mine.attempt_count >= self.settings.callback_max_attempts:
            self.store.callbacks.attempt_failed(mine, result.describe(), None, REDRIVE_AFTER_MS)
            return "failed"
        delay = backoff_s(self.settings.callback_backoff_base_seconds, mine.attempt_count)
        retry_at = self.store.now() + delay * 1000
        if not self.store.callbacks.attempt_failed(mine, result.describe(), retry_at, REDRIVE_AFTER_MS):
            return "lease_lost"
        self.store.callbacks.send(task_id, delay)
        return "retry_scheduled"

    def _attempt(self, cb: Callback) -> webhooks.Delivery:
        """One signed POST of the task as it stands (the guard runs again first)."""
        secret = self.store.callbacks.secret(cb.tenant)
        if secret is None:
            return webhooks.Delivery(None, "no signing secret for this tenant")
        try:
            target = webhooks.check_url(
                cb.url, allow_loopback=self.settings.callback_allow_loopback, resolve=self.resolve
            )
        except webhooks.UnsafeUrl as e:
            return webhooks.Delivery(None, f"refused: the URL {e}")
        turn = self.store.turns.get(cb.task_id)
        if turn is None:
            return webhooks.Delivery(None, "the task is no longer kept")
        task = wire.task_object(turn, text=self.store.turns.committed_text(turn), callback=cb)
        body = json.dumps({"type": cb.event_type, "task": task}, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Turnstop-Signature": webhooks.sign(secret, body, self.store.now() // 1000),
            "Turnstop-Event-Id": cb.event_id,
            "Turnstop-Event-Type": cb.event_type,
            "Turnstop-Delivery-Attempt": str(cb.attempt_count),
        }
        return self.post(target, body, headers, self.settings.callback_timeout_seconds)
