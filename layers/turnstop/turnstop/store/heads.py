"""A new turn's items: its head (queued, or running under a lease), its first event and its
request, and the indexes a head joins (the in-flight index the sweeper reads, the live index of
scoped bulk cancels). ``store.turn_starts`` writes them in a turn's start;
``queued_turn_items`` gives them to a transaction another turn writes (a chat reply's finish, for
the action its agent asks a person to approve)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from turnstop.core.events import Event, PendingEvent
from turnstop.core.records import NewTurn
from turnstop.core.turn import Status, Turn, Usage
from turnstop.store import chunks, codec
from turnstop.store.codec import TURN_SK, turn_pk
from turnstop.store.db import MAX_TURN_LIFE_S, Dynamo
from turnstop.store.live import live_keys

if TYPE_CHECKING:
    from turnstop.idempotency.keys import Tombstone

__all__ = [
    "HEAD",
    "INFLIGHT_PREFIX",
    "INFLIGHT_SHARDS",
    "inflight_pk",
    "kept_until",
    "new_head",
    "queued_turn_items",
    "typed",
]

HEAD = "head"  # the head's name in every turn transaction
INFLIGHT_PREFIX = "INFLIGHT#"
INFLIGHT_SHARDS = 8


def inflight_pk(turn_id: str) -> str:
    """Spread in-flight turns over a few index partitions so none gets hot."""
    return f"{INFLIGHT_PREFIX}{int(hashlib.sha256(turn_id.encode()).hexdigest()[:8], 16) % INFLIGHT_SHARDS}"


def new_head(
    new: NewTurn, now: int, run_as: str | None, lease_ms: int, born: Tombstone | None = None
) -> dict[str, Any]:
    """A new turn's head item (plain attributes): queued, or running under ``run_as``."""
    running = {"started_at": now, "lease_owner": run_as, "lease_expires_at": now + lease_ms} if run_as else {}
    deadline = {} if new.max_duration_ms is None else {"deadline_at": now + new.max_duration_ms}
    # in the sparse in-flight index until its finish removes it (see Sweep)
    inflight = {"gsi2pk": inflight_pk(new.id), "gsi2sk": f"{now:015d}#{new.id}"} if new.swept else {}
    return {
        **running,
        **deadline,
        **(born.head_fields() if born else {}),
        "pk": turn_pk(new.id),
        "sk": TURN_SK,
        "id": new.id,
        "kind": new.kind,
        "tenant": new.tenant,
        "scope": str(new.scope),
        "end_user": new.end_user,
        "account_id": new.account_id,
        "status": (Status.RUNNING if run_as else Status.QUEUED).value,
        "created_at": now,
        "seq": 1,
        "grace_ms": new.grace_ms,
        "usage": Usage(new.input_tokens, 0).to_item(),
        "ttl": max(Dynamo.ttl(now, _life_s(new)), Dynamo.ttl(kept_until(new.input))),
        **inflight,
        # and in the tenant's live index, for scoped bulk cancels, unless born cancelled
        **({} if born else live_keys(new, now)),
        **new.index_keys,
    }


def queued_turn_items(new: NewTurn, created: Callable[[Turn], PendingEvent], now: int) -> list[dict[str, Any]]:
    """A queued turn's items (head, first event, request) as plain items, for a transaction
    another turn writes: a chat reply's finish writes the action its agent asks a person to approve."""
    head = new_head(new, now, None, 0)
    turn = codec.turn_from_item(head, new.input)
    assert turn is not None
    ttl = head["ttl"]
    first = Event(1, *typed(created(turn)))
    return [head, chunks.chunk_item(new.id, [first], "start", ttl), codec.input_item(new.id, new.input, ttl)]


def kept_until(request: dict[str, Any]) -> int:
    """How long a turn's items must outlive its grace (epoch ms, 0: no longer): a session turn's
    message and reply are its session's conversation, sent to the model by the turns after it."""
    return int(request.get("keep_until") or 0)


def _life_s(new: NewTurn) -> int:
    """How long a new turn's items are kept before it ends (cleanup only). A turn only a person
    may start (not swept) may wait its whole grace for them, on top of a turn's usual life."""
    return MAX_TURN_LIFE_S if new.swept else MAX_TURN_LIFE_S + new.grace_ms // 1000


def typed(event: PendingEvent) -> tuple[str, dict[str, Any]]:
    return event.type, event.data
