"""Billing policy: what a finished turn writes to the ledger.

Every entry is written once, in the transaction that finishes the turn (the store's
``attribute_not_exists`` condition makes a second write impossible).
"""

from __future__ import annotations

from decimal import Decimal

from turnstop.core.records import LedgerEntry
from turnstop.core.turn import Status, Usage

# Credits per token, for the debit of a billed turn.
CREDITS_PER_TOKEN = Decimal("0.001")
CREDIT_QUANTUM = Decimal("0.000001")


def billed(status: Status) -> bool:
    """Completed turns (and incomplete ones, cut at the caller's own max_output_tokens) are
    billed; cancelled and failed ones are not."""
    return status in (Status.COMPLETED, Status.INCOMPLETE)


def credits_for(usage: Usage) -> Decimal:
    return (CREDITS_PER_TOKEN * usage.total_tokens).quantize(CREDIT_QUANTUM)


def ledger_for(status: Status, usage: Usage) -> list[LedgerEntry]:
    """A usage record for every finished turn, and a debit for a billed one."""
    is_billed = billed(status)
    entries = [LedgerEntry("usage", {**usage.to_item(), "status": status.value, "billed": is_billed})]
    if is_billed:
        entries.append(LedgerEntry("debit", {"credits": str(credits_for(usage))}))
    return entries
