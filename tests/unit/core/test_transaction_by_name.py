"""Transactions are read by item name: a failure names the item whatever the item order."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.fakes import FakeClock
from turnstop.core import errors
from turnstop.store.db import Dynamo
from turnstop.store.transaction import Transaction


class RefusingDynamo:
    """Answers TransactWriteItems with a cancellation in which the item keyed ``pk=<fail>``
    failed its condition against an old item, the way DynamoDB reports it (one reason per item,
    in request order)."""

    def __init__(self, fail_pk: str | None, code: str = "ConditionalCheckFailed") -> None:
        self.fail_pk = fail_pk
        self.code = code
        self.calls = 0

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls += 1
        reasons = []
        for item in TransactItems:
            body = next(iter(item.values()))
            pk = (body.get("Item") or body.get("Key"))["pk"]["S"]
            if pk == self.fail_pk:
                reasons.append(
                    {"Code": self.code, "Item": {"pk": {"S": pk}, "sk": {"S": "X"}, "owner": {"S": "someone"}}}
                )
            else:
                reasons.append({"Code": "None"})
        raise ClientError(
            {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons}, "TransactWriteItems"
        )


def tx_with(db: Dynamo, order: list[str]) -> Transaction:
    tx = Transaction(db)
    for name in order:
        tx.put(name, {"pk": name.upper(), "sk": "X"}, condition="attribute_not_exists(pk)")
    return tx


@pytest.mark.parametrize(
    "order", [["head", "session", "ledger"], ["session", "ledger", "head"], ["ledger", "head", "session"]]
)
def test_a_failed_item_is_named_whatever_its_position(order: list[str]) -> None:
    db = Dynamo("t", FakeClock(), RefusingDynamo("SESSION"))
    failure = tx_with(db, order).commit()
    assert failure is not None
    assert failure.failed_names == ["session"] and failure.failed("session") and not failure.failed("head")
    assert failure.old("session") == {"pk": "SESSION", "sk": "X", "owner": "someone"}
    assert failure.old("head") is None


def test_a_transaction_without_an_item_leaves_it_out() -> None:
    tx = tx_with(Dynamo("t", FakeClock(), RefusingDynamo(None)), ["head", "session"])
    assert tx.without("session").names == ["head"] and tx.names == ["head", "session"]


def test_an_item_name_is_given_once() -> None:
    tx = Transaction(Dynamo("t", FakeClock(), RefusingDynamo(None)))
    tx.put("head", {"pk": "A", "sk": "X"})
    with pytest.raises(ValueError):
        tx.put("head", {"pk": "B", "sk": "X"})


def test_concurrent_write_conflicts_are_retried_then_reported_as_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    import turnstop.store.transaction as transaction

    monkeypatch.setattr("turnstop.store.transaction.time.sleep", lambda s: None)
    ddb = RefusingDynamo("HEAD", code="TransactionConflict")
    with pytest.raises(errors.Retryable):
        tx_with(Dynamo("t", FakeClock(), ddb), ["head"]).commit()
    assert ddb.calls == transaction.ATTEMPTS


def test_throttling_becomes_retryable_in_one_place() -> None:
    class Throttled:
        def get_item(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "GetItem")

    with pytest.raises(errors.Retryable):
        Dynamo("t", FakeClock(), Throttled()).get("TURN#x", "TURN")


def test_an_item_over_dynamodbs_size_limit_is_a_clear_payload_too_large() -> None:
    class Refuses:
        def put_item(self, **_: Any) -> Any:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": "Item size has exceeded the maximum allowed size",
                    }
                },
                "PutItem",
            )

    with pytest.raises(errors.PayloadTooLarge):
        Dynamo("t", FakeClock(), Refuses()).call("put_item", TableName="t", Item={})
