"""The Idempotency-Key item ``IDEM#<tenant>#<key>`` / ``IDEM`` and a start's use of it: written
in the start's own transaction, the key bound to the turn it starts (or the cancel-before-start
``Tombstone`` it meets replaced by that binding; the cancel that puts one is
``idempotency/tombstones.py``), and what a refusal of it means."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from turnstop.core import errors
from turnstop.core.records import NewTurn
from turnstop.idempotency.bindings import KeyBinding
from turnstop.store.transaction import Failure, Transaction

IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000
IDEMPOTENCY = "idempotency"  # the key item's name in a start transaction
IDEM_SK = "IDEM"  # every key item's sort key: binding, tombstone or kept answer


def idempotency_pk(tenant: str, key: str) -> str:
    return f"IDEM#{tenant}#{key}"


KIND = "tombstone"


@dataclass(frozen=True)
class Tombstone:
    """A cancel that came before its turn: whatever starts with the key is born cancelled."""

    requested_at: int
    expires_at: int
    scope: str | None = None
    end_user: str | None = None
    reason: str | None = None
    actor: str | None = None
    source: str = "api"

    def applies_to(self, new: NewTurn) -> bool:
        """The cancel would have matched this turn (its scope, and its end user when it named one)."""
        return (self.scope is None or self.scope == str(new.scope)) and (
            self.end_user is None or self.end_user == new.end_user
        )

    def head_fields(self) -> dict[str, Any]:
        """What a born-cancelled head carries: the flag as the cancel set it."""
        return {
            "cancel_requested_at": self.requested_at,
            "cancel_source": self.source,
            "cancel_reason": self.reason,
            "cancel_actor": self.actor,
            "cancel_seq": 1,
            "born_cancelled": True,
        }


def tombstone_of(raw: dict[str, Any] | None) -> Tombstone | None:
    if not raw or raw.get("kind") != KIND:
        return None
    return Tombstone(
        requested_at=int(raw["cancel_requested_at"]),
        expires_at=int(raw["expires_at"]),
        scope=raw.get("scope"),
        end_user=raw.get("end_user"),
        reason=raw.get("cancel_reason"),
        actor=raw.get("cancel_actor"),
        source=str(raw.get("cancel_source") or "api"),
    )


def met(old: dict[str, Any] | None, over: Tombstone | None) -> Tombstone | None:
    """The tombstone a start's key binding failed against (``old``), if it is not the one the
    start already knew (and replaces)."""
    found = tombstone_of(old)
    return found if found is not None and found != over else None


def bind_key(
    tx: Transaction, binding: KeyBinding, turn_id: str, now: int, ttl: int, over: Tombstone | None = None
) -> None:
    """Bind the key to the turn, if it is free (absent or expired), or still exactly the
    tombstone ``over`` this start met before."""
    expires = now + IDEMPOTENCY_WINDOW_MS
    item = {
        "pk": idempotency_pk(binding.tenant, binding.key),
        "sk": IDEM_SK,
        "turn_id": turn_id,
        "fingerprint": binding.fingerprint,
        "expires_at": expires,
        "ttl": ttl,
    }
    cond = "attribute_not_exists(pk) OR expires_at <= :now"
    vals: dict[str, Any] = {"now": now}
    if over is not None:
        cond += " OR (kind = :tomb AND cancel_requested_at = :tomb_at)"
        vals.update(tomb="tombstone", tomb_at=over.requested_at)
    tx.put(IDEMPOTENCY, item, condition=cond, values=vals)


def tombstone_met(failure: Failure, over: Tombstone | None) -> Tombstone | None:
    """The tombstone a start's refused key item holds, if it is not the one it already knew."""
    return met(failure.old(IDEMPOTENCY) if failure.failed(IDEMPOTENCY) else None, over)


def refused_key(failure: Failure, binding: KeyBinding) -> Exception | None:
    """Why a start's key item was refused (None: it was not): the same request again is a
    replay of the turn it started, another request with the key a mismatch."""
    if not failure.failed(IDEMPOTENCY):
        return None
    old = failure.old(IDEMPOTENCY) or {}
    if old.get("fingerprint") == binding.fingerprint:
        return errors.IdempotentReplay(old["turn_id"])
    return errors.IdempotencyMismatch(
        "Idempotency-Key was already used with a different request body", turn_id=old.get("turn_id")
    )
