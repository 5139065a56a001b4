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


def add_entry(tx: Transaction, tenant: str, turn_id: str, entry: LedgerEntry, at: int) -> None:
    """One entry, put if absent: ``ledger:<kind>`` in the transaction."""
    tx.put(
        f"ledger:{entry.kind}",
        {
            "pk": ledger_pk(tenant),
            "sk": f"{turn_id}#{entry.kind}",
            "turn_id": turn_id,
            "kind": entry.kind,
            "at": at,
            **entry.data,
        },
        condition="attribute_not_exists(pk)",
    )


def add_entries(tx: Transaction, turn: Turn, entries: list[LedgerEntry], at: int) -> None:
    for entry in entries:
        add_entry(tx, turn.tenant, turn.id, entry, at)


class Ledger:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    def entries(self, tenant: str, turn_id: str | None = None) -> list[dict[str, Any]]:
        cond = "pk = :pk"
        vals: dict[str, Any] = {"pk": ledger_pk(tenant)}
        if turn_id is not None:
            cond += " AND begins_with(sk, :prefix)"
            vals["prefix"] = f"{turn_id}#"
        out: list[dict[str, Any]] = []
        for item in self.db.query_all(KeyConditionExpression=cond, ExpressionAttributeValues=codec.values(**vals)):
            raw = codec.load(item) or {}
            raw.pop("pk", None)
            raw.pop("sk", None)
            out.append(raw)
        return out
