"""The DynamoDB call plumbing every store module uses: one client, expressions with aliased
names, conditional writes that return the old item, and ``ClientError`` codes turned into
domain errors in one place."""

from __future__ import annotations

import logging
import threading
from typing import Any

from turnstop.core import errors
from turnstop.core.clock import Clock
from turnstop.store import codec

log = logging.getLogger(__name__)

# How long DynamoDB keeps an item after its logical expiry before TTL may remove it.
TTL_SLACK_S = 86_400
# Upper bound on a turn's life, for the cleanup TTL of items written while it runs.
MAX_TURN_LIFE_S = 2 * 86_400
# Throttling and transient server errors: the caller may retry; nothing was written.
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "InternalServerError",
        "ServiceUnavailable",
    }
)

BATCH_GET_MAX = 100
BATCH_GET_ATTEMPTS = 5

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def client(service: str) -> Any:
    """One boto3 client per service per container, created on first use (lean cold start)."""
    with _clients_lock:
        if service not in _clients:
            import boto3
            from botocore.config import Config

            cfg = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=10)
            _clients[service] = boto3.client(service, config=cfg)
        return _clients[service]


def too_large(error: Exception) -> bool:
    """DynamoDB refused an item (or a transaction) over its size limits (400 KB an item)."""
    response = getattr(error, "response", None) or {}
    message = str(response.get("Error", {}).get("Message", "")).lower()
    reasons = response.get("CancellationReasons") or []
    return (error_code(error) == "ValidationException" and ("size" in message and "exceed" in message)) or any(
        r.get("Code") == "ValidationError" and "size" in str(r.get("Message", "")).lower() for r in reasons
    )


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class Dynamo:
    """The table and the clock, with the calls every aggregate module makes."""

    def __init__(self, table: str, clock: Clock, dynamodb: Any = None) -> None:
        self.table = table
        self.clock = clock
        self._ddb = dynamodb

    @property
    def ddb(self) -> Any:
        if self._ddb is None:
            self._ddb = client("dynamodb")
        return self._ddb

    def now(self) -> int:
        return self.clock.now_ms()

    @staticmethod
    def ttl(at_ms: int, slack_s: int = TTL_SLACK_S) -> int:
        """The cleanup time (epoch seconds) of an item whose logical life ends at ``at_ms``."""
        return at_ms // 1000 + slack_s

    def call(self, op: str, **kw: Any) -> Any:
        """One DynamoDB call. Throttling and transient errors become ``Retryable``; network
        failures too (the write may or may not have landed, and every write is conditional)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.ddb, op)(**codec.alias_names(kw))
        except ClientError as e:
            code = error_code(e)
            if code in RETRYABLE_CODES:
                log.warning("DynamoDB %s throttled: %s", op, code)
                raise errors.Retryable() from e
            if too_large(e):
                raise errors.PayloadTooLarge("The request is too large to be stored") from e
            raise
        except BotoCoreError as e:
            log.warning("DynamoDB %s unavailable: %s", op, type(e).__name__)
            raise errors.Retryable() from e

    def get(self, pk: str, sk: str, *, consistent: bool = True) -> dict[str, Any] | None:
        out = self.call("get_item", TableName=self.table, Key=codec.key(pk, sk), ConsistentRead=consistent)
        return codec.load(out.get("Item"))

    def batch_get(self, keys: list[tuple[str, str]], *, consistent: bool = True) -> list[dict[str, Any]]:
        """Items by key (plain attributes, in no particular order; missing ones left out):
        BatchGetItem in chunks of 100, following UnprocessedKeys a few times."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_MAX):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [codec.key(pk, sk) for pk, sk in keys[start : start + BATCH_GET_MAX]],
                    "ConsistentRead": consistent,
                }
            }
            for _ in range(BATCH_GET_ATTEMPTS):
                page = self.call("batch_get_item", RequestItems=request)
                out.extend(codec.load(i) or {} for i in page.get("Responses", {}).get(self.table, []))
                request = page.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise errors.Retryable()
        return out

    def query_all(self, **kw: Any) -> list[dict[str, Any]]:
        """Every item of a Query, following LastEvaluatedKey."""
        items: list[dict[str, Any]] = []
        kw = {"TableName": self.table, **kw}
        while True:
            page = self.call("query", **kw)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kw = {**kw, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    def conditional(self, op: str, **kw: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """A conditional write. Returns (attributes, None), or (None, old item) when its
        condition failed: the old item comes back with the failure, no read needed."""
        from botocore.exceptions import ClientError

        try:
            out = self.call(op, TableName=self.table, ReturnValuesOnConditionCheckFailure="ALL_OLD", **kw)
            return out.get("Attributes", {}), None
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return None, e.response.get("Item") or {}
            raise
