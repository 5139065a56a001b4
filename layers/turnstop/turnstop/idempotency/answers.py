"""Idempotency-Keys whose first answer is kept and replayed byte for byte (the tasks cancel).

A request that starts a turn binds its key inside the turn's own start transaction
(``Turns.start``). A request that changes an existing turn cannot: its change is one
conditional UpdateItem on the head, and its answer (the task as it stood then) is not
derivable later. So the key is bound first, the change runs, and its answer is kept:

    bind    PutItem  ``IDEM#<tenant>#<key>`` {fingerprint, state: pending}   if absent / expired
    change  the request's own write (e.g. ``Turns.request_cancel``: still one UpdateItem)
    keep    UpdateItem {state: done, status, body}                            if still my binding

A refused binding returns the record it met (``ALL_OLD``): another body → mismatch; a kept answer
→ replay it; a binding still pending → another request with this key is running. A request that
failed unbinds its key (``unbind``): it changed nothing, so a retry runs again. A binding
left pending by a crash may be taken over by the same request once ``pending_until`` passes.
Keys share the ``IDEM#`` namespace with the start transactions', so one key is one request
per tenant whatever the route (a fingerprint names method, path and body).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from turnstop.core import errors
from turnstop.idempotency.bindings import KeyBinding
from turnstop.idempotency.keys import IDEM_SK, IDEMPOTENCY_WINDOW_MS, idempotency_pk
from turnstop.store import codec
from turnstop.store.db import Dynamo

PENDING, DONE = "pending", "done"


@dataclass(frozen=True)
class KeptAnswer:
    status: int
    body: str  # the exact JSON text first answered


@dataclass(frozen=True)
class InProgress:
    """The key is bound to a request that has not answered yet."""


class Answers:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    def bind(self, binding: KeyBinding, pending_ms: int) -> KeptAnswer | InProgress | None:
        """None when this request now holds the key; else what holds it. Raises
        IdempotencyMismatch when the key was used with another request."""
        now = self.db.now()
        expires = now + IDEMPOTENCY_WINDOW_MS
        item = {
            "pk": idempotency_pk(binding.tenant, binding.key),
            "sk": IDEM_SK,
            "fingerprint": binding.fingerprint,
            "state": PENDING,
            "pending_until": now + pending_ms,
            "expires_at": expires,
            "ttl": self.db.ttl(expires),
        }
        new, old = self.db.conditional(
            "put_item",
            Item=codec.dump(item),
            ConditionExpression=(
                "attribute_not_exists(pk) OR expires_at <= :now"
                " OR (fingerprint = :fp AND state = :pending AND pending_until <= :now)"
            ),
            ExpressionAttributeValues=codec.values(now=now, fp=binding.fingerprint, pending=PENDING),
        )
        if new is not None:
            return None
        return self._held_by(binding, codec.load(old) or {})

    def get(self, binding: KeyBinding) -> KeptAnswer | InProgress | None:
        raw = self.db.get(idempotency_pk(binding.tenant, binding.key), IDEM_SK)
        if raw is None or int(raw.get("expires_at", 0)) <= self.db.now():
            return None
        return self._held_by(binding, raw)

    @staticmethod
    def _held_by(binding: KeyBinding, raw: dict[str, Any]) -> KeptAnswer | InProgress:
        if raw.get("fingerprint") != binding.fingerprint:
            raise errors.IdempotencyMismatch(
                "Idempotency-Key was already used with a different request; use a new key for a new request"
            )
        if raw.get("state") == DONE:
            return KeptAnswer(int(raw["status"]), str(raw["body"]))
        return InProgress()

    def keep(self, binding: KeyBinding, status: int, body: str) -> bool:
        """Keep the answer for replays (False if the binding was lost meanwhile)."""
        new, _ = self.db.conditional(
            "update_item",
            Key=codec.key(idempotency_pk(binding.tenant, binding.key), IDEM_SK),
            UpdateExpression="SET state = :done, status = :status, body = :body REMOVE pending_until",
            ConditionExpression="fingerprint = :fp AND state = :pending",
            ExpressionAttributeValues=codec.values(
                done=DONE, status=status, body=body, fp=binding.fingerprint, pending=PENDING
            ),
        )
        return new is not None

    def unbind(self, binding: KeyBinding) -> None:
        """Unbind the key: the request failed and changed nothing."""
        self.db.conditional(
            "delete_item",
            Key=codec.key(idempotency_pk(binding.tenant, binding.key), IDEM_SK),
            ConditionExpression="fingerprint = :fp AND state = :pending",
            ExpressionAttributeValues=codec.values(fp=binding.fingerprint, pending=PENDING),
        )
