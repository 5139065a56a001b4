"""A start's Idempotency-Key item ``IDEM#<tenant>#<key>`` / ``IDEM``, written in the start's own
transaction: the key bound to the turn it starts (or the cancel-before-start tombstone it meets
replaced by that binding, see ``store/tombstones.py``), and what a refusal of it means."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from turnstop.core import errors
from turnstop.core.records import IdempotencyClaim
from turnstop.store.transaction import Failure, Transaction

if TYPE_CHECKING:
    from turnstop.store.tombstones import Tombstone

IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000
IDEMPOTENCY = "idempotency"  # the key item's name in a start transaction


def idempotency_pk(tenant: str, key: str) -> str:
    return f"IDEM#{tenant}#{key}"


def bind_key(tx: Transaction, claim: IdempotencyClaim, turn_id: str, now: int, ttl: int,
             over: Tombstone | None = None) -> None:  # fmt: skip
    """Bind the key to the turn, if it is free (absent or expired), or still exactly the
    tombstone ``over`` this start met before."""
    expires = now + IDEMPOTENCY_WINDOW_MS
    item = {"pk": idempotency_pk(claim.tenant, claim.key), "sk": "IDEM", "turn_id": turn_id,
            "fingerprint": claim.fingerprint, "expires_at": expires, "ttl": ttl}  # fmt: skip
    cond = "attribute_not_exists(pk) OR expires_at <= :now"
    vals: dict[str, Any] = {"now": now}
    if over is not None:
        cond += " OR (kind = :tomb AND cancel_requested_at = :tomb_at)"
        vals.update(tomb="tombstone", tomb_at=over.requested_at)
    tx.put(IDEMPOTENCY, item, condition=cond, values=vals)


def tombstone_met(failure: Failure, over: Tombstone | None) -> Tombstone | None:
    """The tombstone a start's refused key item holds, if it is not the one it already knew."""
    from turnstop.store.tombstones import met  # a start meets one rarely: imported then

    return met(failure.old(IDEMPOTENCY) if failure.failed(IDEMPOTENCY) else None, over)


def refused_key(failure: Failure, claim: IdempotencyClaim) -> Exception | None:
    """Why a start's key item was refused (None: it was not): the same request again is a
    replay of the turn it started, another request with the key a mismatch."""
    if not failure.failed(IDEMPOTENCY):
        return None
    old = failure.old(IDEMPOTENCY) or {}
    if old.get("fingerprint") == claim.fingerprint:
        return errors.IdempotentReplay(old["turn_id"])
    return errors.IdempotencyMismatch(
        "Idempotency-Key was already used with a different request body", turn_id=old.get("turn_id")
    )
