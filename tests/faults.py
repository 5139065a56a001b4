"""Fault injection for the DynamoDB client: the real client (moto or DynamoDB Local) with
chosen calls failing the ways DynamoDB fails in production.

A fault fails the next matching call ``times`` times, either before it reaches the table
(throttling, a conflict, a timeout on the way there) or after it landed (a timeout on the way
back: the write happened, its answer was lost), which is the case a retry must recognise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError


def throttled(op: str) -> Exception:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, op)


def over_capacity(op: str) -> Exception:
    message = "The level of configured provisioned throughput for the table was exceeded."
    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": message}}, op)


def conflict(op: str) -> Exception:
    """A write meeting a transaction in flight on the same item: for a transaction, the whole
    transaction is cancelled with ``TransactionConflict``; a single write gets its own code."""
    if op == "TransactWriteItems":
        return ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                "CancellationReasons": [{"Code": "TransactionConflict"}],
            },
            op,
        )
    return ClientError({"Error": {"Code": "TransactionConflictException", "Message": "Conflict"}}, op)


def timeout(op: str) -> Exception:
    return ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")


# Each store fault a write can meet, and whether the write landed first (its answer lost).
FAULTS = {
    "throttled": (throttled, False),
    "over-capacity": (over_capacity, False),
    "transaction-in-flight": (conflict, False),
    "timeout-before-the-write": (timeout, False),
    "timeout-after-the-write": (timeout, True),
}


OPERATIONS = {
    "get_item": "GetItem",
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "query": "Query",
    "batch_get_item": "BatchGetItem",
    "transact_write_items": "TransactWriteItems",
}


@dataclass
class Fault:
    op: str  # the client method: "update_item", "transact_write_items", ...
    error: Callable[[str], Exception]
    after: bool = False  # the call lands first, then fails (its answer is lost)
    times: int = 1
    match: Callable[[dict[str, Any]], bool] = lambda kw: True
    fired: int = 0


@dataclass
class FaultyClient:
    real: Any
    faults: list[Fault] = field(default_factory=list)

    def inject(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    @property
    def fired(self) -> int:
        return sum(f.fired for f in self.faults)

    def _take(self, op: str, kw: dict[str, Any]) -> Fault | None:
        for fault in self.faults:
            if fault.op == op and fault.fired < fault.times and fault.match(kw):
                fault.fired += 1
                return fault
        return None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if name not in OPERATIONS:
            return attr

        def call(**kw: Any) -> Any:
            fault = self._take(name, kw)
            if fault is not None and not fault.after:
                raise fault.error(OPERATIONS[name])
            out = attr(**kw)
            if fault is not None:
                raise fault.error(OPERATIONS[name])
            return out

        return call


def updates(*names: str) -> Callable[[dict[str, Any]], bool]:
    """Matches an UpdateItem whose expression sets each of ``names`` (``seq`` for a publish)."""

    def match(kw: dict[str, Any]) -> bool:
        expression = str(kw.get("UpdateExpression", ""))
        return all(re.search(rf"(?:^|[\s,])#?{n} = ", expression) for n in names)

    return match


def publishes(at_least: int) -> Callable[[dict[str, Any]], bool]:
    """Matches a publish's head update that moves ``seq`` to ``at_least`` or beyond (an earlier
    publish, which a loaded machine's keeper may make before the model gets that far, passes)."""

    def match(kw: dict[str, Any]) -> bool:
        seq = kw.get("ExpressionAttributeValues", {}).get(":seq")
        value = seq.get("N") if isinstance(seq, dict) else seq
        return updates("seq")(kw) and value is not None and int(value) >= at_least

    return match


def puts_chunk(kw: dict[str, Any]) -> bool:
    return str(kw.get("Item", {}).get("sk", {}).get("S", "")).startswith("EV#")
