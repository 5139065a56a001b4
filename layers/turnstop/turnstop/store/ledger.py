"""The ledger: ``LEDGER#<tenant>`` / ``<turn id>#<kind>``, one item per entry, each written once
inside the transaction that starts (a task's charge) or finishes its turn."""

from __future__ import annotations

from typing import Any

from turnstop.core.records import LedgerEntry
from turnstop.core.turn import Turn
from turnstop.store import codec
from turnstop.store.db import Dynamo
from turnstop.store.transaction import Transaction


def ledger_pk(tenant: str) -> str:
    return f"LEDGER#{tenant}"


def add_entry(
    tx: Transaction, tenant: str, turn_id: str, entry: LedgerEntry, at: int, end_user: str | None = None
) -> None:
    """One entry, put if absent: ``ledger:<kind>`` in the transaction. It carries the turn's
    end user, so the ledger is scoped like every read."""
    tx.put(
        f"ledger:{entry.kind}",
        {
            "pk": ledger_pk(tenant),
            "sk": f"{turn_id}#{entry.kind}",
            "turn_id": turn_id,
            "end_user": end_user,
            "kind": entry.kind,
            "at": at,
            **entry.data,
        },
        condition="attribute_not_exists(pk)",
    )


def add_entries(tx: Transaction, turn: Turn, entries: list[LedgerEntry], at: int) -> None:
    for entry in entries:
        add_entry(tx, turn.tenant, turn.id, entry, at, turn.end_user)


class Ledger:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    def entries(self, tenant: str, turn_id: str | None = None, end_user: str | None = None) -> list[dict[str, Any]]:
        """A tenant's entries (of one turn); a caller acting for an end user sees only that
        user's, like every other read."""
        cond = "pk = :pk"
        vals: dict[str, Any] = {"pk": ledger_pk(tenant)}
        extra: dict[str, Any] = {}
        if turn_id is not None:
            cond += " AND begins_with(sk, :prefix)"
            vals["prefix"] = f"{turn_id}#"
        if end_user is not None:
            extra["FilterExpression"] = "end_user = :end_user"
            vals["end_user"] = end_user
        out: list[dict[str, Any]] = []
        for item in self.db.query_all(
            KeyConditionExpression=cond, ExpressionAttributeValues=codec.values(**vals), **extra
        ):
            raw = codec.load(item) or {}
            raw.pop("pk", None)
            raw.pop("sk", None)
            out.append(raw)
        return out
