"""Tasks (the tasks dialect): a task is a turn; this module adds what tasks need around it.

- The charge: a ledger entry written in the transaction that creates the turn (so a task
  exists if and only if it was charged), next to the Idempotency-Key binding.
- The list: a task head carries ``gsi3pk = TASKS#<tenant>`` / ``gsi3sk = <created_at>#<id>``
  from its creation. ``gsi3`` projects only ``status``, ``cancel_requested_at``, ``expires_at``
  and ``end_user``: values a claim, a cancel or a finish change, never a step's commit (which
  writes ``seq``, ``usage`` and the lease), so running a task writes no index copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from turnstop.core import errors
from turnstop.core.events import PendingEvent
from turnstop.core.records import LedgerEntry, NewTurn
from turnstop.core.turn import Status, Turn
from turnstop.idempotency.bindings import KeyBinding
from turnstop.store import codec, ledger
from turnstop.store.codec import INPUT_SK, TURN_SK, turn_pk
from turnstop.store.db import Dynamo
from turnstop.store.transaction import Transaction
from turnstop.store.turns import Turns

TASK_INDEX = "gsi3"
# A filtered list page reads at most this many index pages before it answers (with a cursor).
MAX_INDEX_PAGES = 10


def list_pk(tenant: str) -> str:
    return f"TASKS#{tenant}"


def index_keys(tenant: str, turn_id: str, created_at: int) -> dict[str, str]:
    """The head's keys in the tasks list: newest first is descending ``gsi3sk``."""
    return {"gsi3pk": list_pk(tenant), "gsi3sk": f"{created_at:015d}#{turn_id}"}


def _status_condition(statuses: Iterable[Status], vals: dict[str, Any]) -> str:
    """The index condition for tasks whose *effective* status is one of ``statuses`` (a queued
    turn with its cancel flag set is cancelled). DynamoDB refuses redundant parentheses."""
    parts = []
    for s in sorted(set(statuses)):
        vals[f"st_{s.value}"] = s.value
        if s is Status.QUEUED:
            parts.append("status = :st_queued AND attribute_not_exists(cancel_requested_at)")
        elif s is Status.CANCELLED:
            vals["st_queued"] = Status.QUEUED.value
            parts.append("status = :st_cancelled OR (status = :st_queued AND attribute_exists(cancel_requested_at))")
        else:
            parts.append(f"status = :st_{s.value}")
    if len(parts) == 1:
        return f"({parts[0]})"
    return "(" + " OR ".join(f"({p})" for p in parts) + ")"


class Tasks:
    def __init__(self, db: Dynamo, turns: Turns) -> None:
        self.db = db
        self.turns = turns

    def start(
        self,
        new: NewTurn,
        created: Callable[[Turn], PendingEvent],
        charge: LedgerEntry,
        idempotency: KeyBinding | None = None,
    ) -> Turn:
        """The turn, its first event, its charge [and its Idempotency-Key]: one transaction."""
        at = self.db.now()

        def extra(tx: Transaction) -> None:
            ledger.add_entry(tx, new.tenant, new.id, charge, at, new.end_user)

        try:
            return self.turns.start(new, created, idempotency=idempotency, extra=extra)
        except errors.ExtraItemsRejected:
            raise errors.Retryable() from None

    def page(
        self,
        tenant: str,
        *,
        limit: int,
        statuses: frozenset[Status] | None = None,
        end_user: str | None = None,
        after: str | None = None,
    ) -> tuple[list[Turn], str | None]:
        """A page of the tenant's tasks, newest first, still inside their retention. ``after``
        and the returned cursor are the ``gsi3sk`` of a page's last task."""
        now = self.db.now()
        vals: dict[str, Any] = {"pk": list_pk(tenant), "now": now}
        conds = ["(attribute_not_exists(expires_at) OR expires_at > :now)"]
        if statuses:
            conds.append(_status_condition(statuses, vals))
        if end_user is not None:
            conds.append("end_user = :end_user")
            vals["end_user"] = end_user
        kw: dict[str, Any] = {
            "TableName": self.db.table,
            "IndexName": TASK_INDEX,
            "KeyConditionExpression": "gsi3pk = :pk",
            "FilterExpression": " AND ".join(conds),
            "ExpressionAttributeValues": codec.values(**vals),
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after is not None:
            turn_id = after.partition("#")[2]
            kw["ExclusiveStartKey"] = {
                "gsi3pk": {"S": list_pk(tenant)},
                "gsi3sk": {"S": after},
                "pk": {"S": turn_pk(turn_id)},
                "sk": {"S": TURN_SK},
            }
        keys: list[str] = []
        evaluated: dict[str, Any] | None = None
        for _ in range(MAX_INDEX_PAGES):
            page = self.db.call("query", **kw)
            keys.extend(str((codec.load(i) or {})["gsi3sk"]) for i in page.get("Items", []))
            evaluated = page.get("LastEvaluatedKey")
            if len(keys) > limit or evaluated is None:
                break
            kw["ExclusiveStartKey"] = evaluated
        if len(keys) > limit:
            keys = keys[:limit]
            cursor: str | None = keys[-1]
        else:  # a short page (the filter left few); more may follow what was read
            cursor = None if evaluated is None else str(evaluated["gsi3sk"]["S"])
        heads = self._heads([k.partition("#")[2] for k in keys])
        turns = [
            t
            for t in heads
            if not t.expired(now) and (not statuses or t.status in statuses) and t.visible_to(tenant, end_user=end_user)
        ]
        return turns, cursor

    def _heads(self, turn_ids: list[str]) -> list[Turn]:
        """Turns by id with their requests, in the given order (BatchGetItem of each head and
        its INPUT item)."""
        keys = [(turn_pk(i), sk) for i in turn_ids for sk in (TURN_SK, INPUT_SK)]
        items: dict[tuple[str, str], dict[str, Any]] = {
            (str(r["pk"]), str(r["sk"])): r for r in self.db.batch_get(keys)
        }
        found = [
            codec.turn_from_item(items.get((turn_pk(i), TURN_SK)), codec.input_of(items.get((turn_pk(i), INPUT_SK))))
            for i in turn_ids
        ]
        return [t for t in found if t is not None]
