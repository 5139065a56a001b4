"""TransactWriteItems with named items: a failure is asked for by name, never by position.

tx = Transaction(db)
tx.put("head", item, condition="attribute_not_exists(pk)")
tx.update("session", key, "SET ...", condition="...", values=...)
failure = tx.commit()
if failure and failure.failed("session"): ...
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from turnstop.core import errors
from turnstop.store import codec
from turnstop.store.db import Dynamo, error_code

# A concurrent write on one of the items (a cancel racing a commit) cancels the transaction
# with no condition failed: nothing was written and the conditions make a retry safe.
ATTEMPTS = 8
MAX_ITEMS = 100


@dataclass(frozen=True)
class Failure:
    """Why a transaction was refused: per item name, its cancellation code and old item."""

    codes: dict[str, str | None]
    olds: dict[str, dict[str, Any] | None]

    def failed(self, name: str) -> bool:
        """Whether this item's own condition failed."""
        return self.codes.get(name) == "ConditionalCheckFailed"

    def old(self, name: str) -> dict[str, Any] | None:
        """The item (plain attributes) this item's condition failed against, if any."""
        return self.olds.get(name)

    @property
    def failed_names(self) -> list[str]:
        return [n for n in self.codes if self.failed(n)]


class Transaction:
    def __init__(self, db: Dynamo) -> None:
        self.db = db
        self._items: list[tuple[str, dict[str, Any]]] = []

    def __len__(self) -> int:
        return len(self._items)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self._items]

    def _add(self, name: str, kind: str, body: dict[str, Any]) -> Transaction:
        if name in self.names:
            raise ValueError(f"transaction item {name!r} named twice")
        self._items.append((name, {kind: {"TableName": self.db.table, **body}}))
        return self

    @staticmethod
    def _condition(condition: str | None, values: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if condition:
            body["ConditionExpression"] = condition
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if values:
            body["ExpressionAttributeValues"] = codec.values(**values)
        return body

    def put(
        self, name: str, item: dict[str, Any], *, condition: str | None = None, values: dict[str, Any] | None = None
    ) -> Transaction:
        """Put a plain item (``codec.dump`` converts it)."""
        return self._add(name, "Put", {"Item": codec.dump(item), **self._condition(condition, values)})

    def update(
        self,
        name: str,
        pk: str,
        sk: str,
        update: str,
        *,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> Transaction:
        body = {"Key": codec.key(pk, sk), "UpdateExpression": update, **self._condition(condition, values)}
        return self._add(name, "Update", body)

    def check(self, name: str, pk: str, sk: str, condition: str, values: dict[str, Any] | None = None) -> Transaction:
        return self._add(name, "ConditionCheck", {"Key": codec.key(pk, sk), **self._condition(condition, values)})

    def delete(
        self, name: str, pk: str, sk: str, *, condition: str | None = None, values: dict[str, Any] | None = None
    ) -> Transaction:
        return self._add(name, "Delete", {"Key": codec.key(pk, sk), **self._condition(condition, values)})

    def without(self, *names: str) -> Transaction:
        """The same transaction less the named items (e.g. retry without a moved-on session)."""
        other = Transaction(self.db)
        other._items = [(n, body) for n, body in self._items if n not in names]
        return other

    def commit(self) -> Failure | None:
        """Run it. None when it landed; a ``Failure`` when a condition failed (nothing written)."""
        from botocore.exceptions import ClientError

        if len(self._items) > MAX_ITEMS:
            raise ValueError(f"a transaction holds at most {MAX_ITEMS} items, not {len(self._items)}")
        request = [self._aliased(body) for _, body in self._items]
        for attempt in range(ATTEMPTS):
            try:
                self.db.call("transact_write_items", TransactItems=request)
                return None
            except ClientError as e:
                if error_code(e) != "TransactionCanceledException":
                    raise
                reasons = e.response.get("CancellationReasons") or []
                if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                    return self._failure(reasons)
                if attempt + 1 == ATTEMPTS:
                    raise errors.Retryable() from e
                time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
        return None

    @staticmethod
    def _aliased(item: dict[str, Any]) -> dict[str, Any]:
        kind, body = next(iter(item.items()))
        return {kind: codec.alias_names(body)}

    def _failure(self, reasons: list[dict[str, Any]]) -> Failure:
        # DynamoDB answers one reason per item, in request order: the only place order is read.
        codes: dict[str, str | None] = {}
        olds: dict[str, dict[str, Any] | None] = {}
        for (name, _), reason in zip(self._items, reasons, strict=False):
            code = reason.get("Code")
            codes[name] = None if code in (None, "None") else str(code)
            olds[name] = codec.load(reason.get("Item"))
        return Failure(codes, olds)
