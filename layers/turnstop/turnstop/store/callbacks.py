"""Task callbacks (webhooks): the outbox item of a finished task, the delivery attempts
recorded on it, the tenants' signing secrets and the callback queue.

- callback ``TURN#<id>`` / ``CALLBACK``: written once, put if absent, in the task's finishing
  transaction (an outbox: the terminal state and the duty to tell the receiver land together).
  ``status`` goes ``pending`` → ``delivered`` | ``failed``, each step one conditional write.
  ``attempt_count`` counts attempts started; ``sending_until`` is the lease of the attempt in
  progress, so duplicate queue messages never send at the same time; ``next_attempt_at`` is
  when the next attempt is due (backoff).
  While pending it is in the sparse in-flight index ``gsi2`` (``CALLBACK#<shard>`` /
  ``<redrive_at>#<id>``): ``redrive_at`` is when its queue message is overdue (a crash between
  the finish and the send, a lost message), and the sweeper re-sends it then.
- signing secret ``WEBHOOK#<tenant>`` / ``SECRET``: the key receivers verify signatures with.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from turnstop.core.turn import Turn
from turnstop.store import codec
from turnstop.store.codec import turn_pk
from turnstop.store.db import TTL_SLACK_S, Dynamo, client

CALLBACK_SK = "CALLBACK"
CALLBACK_PREFIX = "CALLBACK#"
CALLBACK_SHARDS = 8
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
SECRET_SK = "SECRET"
# How long past its due time a pending callback's queue message may take before the sweeper
# re-sends it (covers a crash between a task's finish and the send, and lost messages).
REDRIVE_AFTER_MS = 120_000


def callback_shard_pk(turn_id: str) -> str:
    return f"{CALLBACK_PREFIX}{int(hashlib.sha256(turn_id.encode()).hexdigest()[:8], 16) % CALLBACK_SHARDS}"


def secret_pk(tenant: str) -> str:
    return f"WEBHOOK#{tenant}"


def _redrive_keys(turn_id: str, redrive_at: int) -> dict[str, Any]:
    return {"redrive_at": redrive_at, "gsi2pk": callback_shard_pk(turn_id), "gsi2sk": f"{redrive_at:015d}#{turn_id}"}


def outbox_item(
    turn: Turn, *, url: str, event_id: str, event_type: str, at: int, redrive_at: int, expires_at: int
) -> dict[str, Any]:
    """The callback item a finishing transaction writes (a plain item, put if absent)."""
    return {
        "pk": turn_pk(turn.id),
        "sk": CALLBACK_SK,
        "task_id": turn.id,
        "tenant": turn.tenant,
        "url": url,
        "event_id": event_id,
        "event_type": event_type,
        "status": PENDING,
        "attempt_count": 0,
        "created_at": at,
        "ttl": expires_at // 1000 + TTL_SLACK_S,
        **_redrive_keys(turn.id, redrive_at),
    }


@dataclass(frozen=True)
class Callback:
    task_id: str
    tenant: str
    url: str
    event_id: str
    event_type: str
    status: str
    attempt_count: int
    created_at: int
    last_error: str | None = None
    delivered_at: int | None = None
    next_attempt_at: int | None = None
    sending_until: int | None = None
    sender: str | None = None

    @property
    def done(self) -> bool:
        return self.status != PENDING

    def due(self, now: int) -> bool:
        """Pending, no attempt in progress, and its backoff has passed."""
        return (
            not self.done
            and (self.sending_until is None or self.sending_until <= now)
            and (self.next_attempt_at is None or self.next_attempt_at <= now)
        )


def callback_from_item(raw: dict[str, Any] | None) -> Callback | None:
    if not raw or raw.get("sk") != CALLBACK_SK:
        return None
    return Callback(
        task_id=raw["task_id"],
        tenant=raw["tenant"],
        url=raw["url"],
        event_id=raw["event_id"],
        event_type=raw["event_type"],
        status=raw["status"],
        attempt_count=int(raw.get("attempt_count", 0)),
        created_at=int(raw["created_at"]),
        last_error=raw.get("last_error"),
        delivered_at=raw.get("delivered_at"),
        next_attempt_at=raw.get("next_attempt_at"),
        sending_until=raw.get("sending_until"),
        sender=raw.get("sender"),
    )


class Callbacks:
    def __init__(self, db: Dynamo, queue_url: str | None = None, sqs: Any = None) -> None:
        self.db = db
        self.queue_url = queue_url
        self._sqs = sqs

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = client("sqs")
        return self._sqs

    # ------------------------------------------------------------------ the queue

    def send(self, task_id: str, delay_s: int = 0) -> None:
        """Ask the delivery function to try this task's callback (after ``delay_s``, ≤ 900)."""
        if not self.queue_url:
            raise RuntimeError("no callback queue configured")
        kw: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": json.dumps({"task_id": task_id})}
        if delay_s > 0:
            kw["DelaySeconds"] = min(900, delay_s)
        self.sqs.send_message(**kw)

    # ------------------------------------------------------------------ the outbox item

    def get(self, task_id: str) -> Callback | None:
        return callback_from_item(self.db.get(turn_pk(task_id), CALLBACK_SK))

    def get_many(self, task_ids: list[str]) -> dict[str, Callback]:
        found = [callback_from_item(i) for i in self.db.batch_get([(turn_pk(t), CALLBACK_SK) for t in task_ids])]
        return {c.task_id: c for c in found if c is not None}

    def begin_attempt(self, cb: Callback, owner: str, lease_ms: int, redrive_ms: int) -> Callback | None:
        """Start attempt ``attempt_count + 1`` under a lease, if it is due and nobody else is
        sending: one conditional write. None when another message got there first, the
        backoff has not passed, or the callback is settled."""
        now = self.db.now()
        until = now + lease_ms
        sets = {
            "n1": cb.attempt_count + 1,
            "until": until,
            "owner": owner,
            **_redrive_keys(cb.task_id, until + redrive_ms),
        }
        new, _ = self.db.conditional(
            "update_item",
            Key=codec.key(turn_pk(cb.task_id), CALLBACK_SK),
            UpdateExpression=(
                "SET attempt_count = :n1, sending_until = :until, sender = :owner,"
                " redrive_at = :redrive_at, gsi2pk = :gsi2pk, gsi2sk = :gsi2sk"
            ),
            ConditionExpression=(
                "status = :pending AND attempt_count = :n"
                " AND (attribute_not_exists(sending_until) OR sending_until <= :now)"
                " AND (attribute_not_exists(next_attempt_at) OR next_attempt_at <= :now)"
            ),
            ExpressionAttributeValues=codec.values(pending=PENDING, n=cb.attempt_count, now=now, **sets),
            ReturnValues="ALL_NEW",
        )
        return callback_from_item(codec.load(new)) if new is not None else None

    def _settle_attempt(self, cb: Callback, update: str, vals: dict[str, Any]) -> bool:
        new, _ = self.db.conditional(
            "update_item",
            Key=codec.key(turn_pk(cb.task_id), CALLBACK_SK),
            UpdateExpression=update,
            ConditionExpression="status = :pending AND attempt_count = :n AND sender = :owner",
            ExpressionAttributeValues=codec.values(pending=PENDING, n=cb.attempt_count, owner=cb.sender, **vals),
        )
        return new is not None

    def delivered(self, cb: Callback) -> bool:
        """The receiver answered 2xx to this attempt: ``delivered``, once (the condition names
        the attempt and its sender, so no other message can record a second one)."""
        return self._settle_attempt(
            cb,
            "SET status = :delivered, delivered_at = :now"
            " REMOVE sending_until, sender, next_attempt_at, redrive_at, gsi2pk, gsi2sk",
            {"delivered": DELIVERED, "now": self.db.now()},
        )

    def attempt_failed(self, cb: Callback, error: str, retry_at: int | None, redrive_ms: int) -> bool:
        """This attempt failed: due again at ``retry_at``, or ``failed`` for good when None."""
        if retry_at is None:
            return self._settle_attempt(
                cb,
                "SET status = :failed, last_error = :error"
                " REMOVE sending_until, sender, next_attempt_at, redrive_at, gsi2pk, gsi2sk",
                {"failed": FAILED, "error": error},
            )
        keys = _redrive_keys(cb.task_id, retry_at + redrive_ms)
        return self._settle_attempt(
            cb,
            "SET last_error = :error, next_attempt_at = :retry, redrive_at = :redrive_at, gsi2sk = :gsi2sk"
            " REMOVE sending_until, sender",
            {"error": error, "retry": retry_at, "redrive_at": keys["redrive_at"], "gsi2sk": keys["gsi2sk"]},
        )

    # ------------------------------------------------------------------ the sweeper

    def overdue(self, shard: int) -> list[str]:
        """Pending callbacks whose queue message is overdue (their ``redrive_at`` has passed)."""
        items = self.db.query_all(
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :pk AND gsi2sk < :bound",
            ExpressionAttributeValues=codec.values(pk=f"{CALLBACK_PREFIX}{shard}", bound=f"{self.db.now() + 1:015d}"),
        )
        return [str((codec.load(i) or {})["pk"]).removeprefix("TURN#") for i in items]

    def mark_redriven(self, task_id: str, redrive_ms: int) -> bool:
        """Record that the sweeper re-sends this callback's message now (unless another sweep
        just did, or it has settled), pushing its next redrive time out."""
        now = self.db.now()
        keys = _redrive_keys(task_id, now + redrive_ms)
        new, _ = self.db.conditional(
            "update_item",
            Key=codec.key(turn_pk(task_id), CALLBACK_SK),
            UpdateExpression="SET redrive_at = :redrive_at, gsi2sk = :gsi2sk",
            ConditionExpression="status = :pending AND redrive_at <= :now",
            ExpressionAttributeValues=codec.values(
                pending=PENDING, now=now, redrive_at=keys["redrive_at"], gsi2sk=keys["gsi2sk"]
            ),
        )
        return new is not None

    # ------------------------------------------------------------------ signing secrets

    def put_secret(self, tenant: str, secret: str, *, only_if_absent: bool) -> bool:
        """Store a tenant's signing secret; with ``only_if_absent``, keep an existing one (False)."""
        item = codec.dump({"pk": secret_pk(tenant), "sk": SECRET_SK, "secret": secret, "created_at": self.db.now()})
        if not only_if_absent:
            self.db.call("put_item", TableName=self.db.table, Item=item)
            return True
        new, _ = self.db.conditional("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        return new is not None

    def secret(self, tenant: str) -> str | None:
        raw = self.db.get(secret_pk(tenant), SECRET_SK, consistent=False)
        return str(raw["secret"]) if raw and raw.get("secret") else None
