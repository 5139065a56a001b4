"""The turn queue: handing turns to workers, re-sending stalled ones, and undoing a start
whose message the queue refused."""

from __future__ import annotations

import json
import logging
from typing import Any

from turnstop.core import errors
from turnstop.core.turn import Status, Turn
from turnstop.idempotency.bindings import KeyBinding
from turnstop.idempotency.keys import IDEM_SK, IDEMPOTENCY, idempotency_pk
from turnstop.store import codec, sessions
from turnstop.store.codec import TURN_SK, turn_pk
from turnstop.store.db import Dynamo, client
from turnstop.store.heads import HEAD
from turnstop.store.transaction import Transaction

log = logging.getLogger(__name__)


class TurnQueue:
    def __init__(self, db: Dynamo, queue_url: str | None, sqs: Any = None) -> None:
        self.db = db
        self.url = queue_url
        self._sqs = sqs

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = client("sqs")
        return self._sqs

    def _send(self, turn_id: str) -> None:
        if not self.url:
            raise RuntimeError("no turn queue configured")
        self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps({"turn_id": turn_id}))

    def requeue(self, turn_id: str) -> None:
        """Send a turn's message again. Duplicates are harmless: only one claim can win."""
        self._send(turn_id)

    def enqueue(self, turn: Turn, idempotency: KeyBinding | None = None) -> None:
        """Hand the turn to a worker. If the queue refuses, cancel the still-queued turn, free
        its session and unbind its Idempotency-Key in one transaction (so a retry starts
        afresh and nothing waits for a message never sent), then raise Retryable. If the
        turn has meanwhile been claimed, the message did go out: nothing to undo."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._send(turn.id)
        except (BotoCoreError, ClientError) as e:
            if turn.cancelled_before_start:
                # Born cancelled (its key was cancelled first): it never runs, so there is nothing
                # to undo; the sweeper re-sends a queued turn whose end nobody recorded.
                log.warning("send_message failed for %s, born cancelled; the sweeper records it", turn.id)
                return
            if self._abandon_queued(turn, idempotency):
                raise errors.Retryable("The turn could not be queued; nothing was started") from e
            log.warning("send_message failed for %s, but a worker already has it", turn.id)

    def _abandon_queued(self, turn: Turn, idempotency: KeyBinding | None) -> bool:
        now = self.db.now()
        tx = Transaction(self.db)
        tx.update(
            HEAD,
            turn_pk(turn.id),
            TURN_SK,
            "SET cancel_requested_at = :now, cancel_source = :source",
            condition="status = :queued AND attribute_not_exists(cancel_requested_at)",
            values={"now": now, "source": "enqueue_failed", "queued": Status.QUEUED.value},
        )
        sessions.release_slot(tx, turn)
        if idempotency is not None:
            tx.delete(
                IDEMPOTENCY,
                idempotency_pk(idempotency.tenant, idempotency.key),
                IDEM_SK,
                condition="turn_id = :tid",
                values={"tid": turn.id},
            )
        failure = tx.commit()
        if failure is None:
            return True
        old = codec.turn_from_item(failure.old(HEAD)) if failure.failed(HEAD) else None
        if old is not None and old.stored_status is not Status.QUEUED:
            return False  # claimed: the message reached a worker after all
        # Cancelled concurrently (or a cleanup item had moved on): make sure the turn ends
        # and free what can still be freed, one item at a time.
        for name in tx.names:
            if name != HEAD or old is None:
                tx.without(*(n for n in tx.names if n != name)).commit()
        return True
