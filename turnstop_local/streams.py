"""Lambda's DynamoDB Streams event-source mapping, locally: read a table's stream, invoke.

One poller thread per ``Type: DynamoDB`` event of the template. It reads the stream of the local
table (DynamoDB Local and moto's server both serve the DynamoDB Streams API), shard by shard in
order (a child shard only once its parent is read to its end), and invokes the function with the
event Lambda builds (``Records[]`` with ``eventSourceARN``, images in DynamoDB JSON, binary values
base64) and with Lambda's rules:

- ``StartingPosition``: ``TRIM_HORIZON`` (every record the stream keeps) or ``LATEST`` (from now);
- batches of up to ``BatchSize`` records of one shard, gathered for up to
  ``MaximumBatchingWindowInSeconds``; one batch per shard at a time, in order;
- ``FilterCriteria``: records that match no filter are dropped (and passed, as Lambda does);
- a batch that fails is retried, with backoff, from where it failed: from the lowest sequence
  number a ``ReportBatchItemFailures`` answer names (a malformed answer fails the whole batch), or
  the whole batch when the handler raised; ``BisectBatchOnFunctionError`` splits a batch whose
  handler raised in two and retries each half on its own;
- after ``MaximumRetryAttempts`` retries (or past ``MaximumRecordAgeInSeconds``) the batch is
  dropped and, with a ``DestinationConfig.OnFailure`` queue, Lambda's invocation record
  (``DDBStreamBatchInfo``: shard and sequence numbers, not the records) is sent there.

Checkpoints live in memory: the local stores keep their data in memory too.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import time
import uuid
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import boto3

from turnstop_local.event_filters import check_pattern, matches
from turnstop_local.lambda_host import FunctionHost, LambdaFunction
from turnstop_local.pollers import Mappings, Poller
from turnstop_local.template import DEFAULT_REGION, Template, TemplateError
from turnstop_local.template.facts import ref_target

__all__ = [
    "EVENTS_FILE",
    "DynamoDBEventSource",
    "StreamMappings",
    "StreamPoller",
    "dynamodb_event_sources",
    "use_events_file",
]

log = logging.getLogger("turnstop_local.streams")

_IDLE_SECONDS = 0.05  # between reads of a quiet stream
_SHARDS_EVERY_SECONDS = 1.0  # how often the shard list is refreshed
_MAX_BACKOFF_SECONDS = 5.0
# Where the turn-events function writes instead of EventBridge, locally (TURNSTOP_EVENTS_FILE).
EVENTS_FILE = "TURNSTOP_EVENTS_FILE"


def use_events_file(state_dir: Path, environ: MutableMapping[str, str] | None = None) -> Path:
    """Point the turn-events function at ``<state dir>/events.jsonl`` (unless the environment
    names another file): the local runtime has no EventBridge, so anyone can tail the events
    there. Set before the functions load (they read their settings at cold start)."""
    environ = os.environ if environ is None else environ
    environ.setdefault(EVENTS_FILE, str(state_dir / "events.jsonl"))
    return Path(environ[EVENTS_FILE])


@dataclass(frozen=True)
class DynamoDBEventSource:
    """A ``Type: DynamoDB`` event of a function: what its event-source mapping is configured with."""

    function_id: str
    name: str
    table_id: str
    starting_position: str = "TRIM_HORIZON"
    batch_size: int = 100
    maximum_batching_window: float = 0
    function_response_types: tuple[str, ...] = ()
    bisect: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age: int = -1
    on_failure_queue_id: str | None = None
    filters: tuple[Any, ...] = ()
    enabled: bool = True

    @property
    def report_batch_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.function_response_types


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


def dynamodb_event_sources(template: Template) -> list[DynamoDBEventSource]:
    """Every ``Type: DynamoDB`` event of the template's functions."""
    sources = []
    for function in template.functions.values():
        for name, event in (function.properties.get("Events") or {}).items():
            if (event or {}).get("Type") != "DynamoDB":
                continue
            props = event.get("Properties") or {}
            table_id = ref_target(props.get("Stream"))
            if table_id is None or table_id not in template.table_ids:
                raise TemplateError(f"{function.logical_id}.{name}: Stream must be !GetAtt <Table>.StreamArn")
            on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            patterns = ((template.resolve(props.get("FilterCriteria")) or {}).get("Filters")) or []
            filters = tuple(json.loads(f["Pattern"]) for f in patterns)
            for pattern in filters:
                check_pattern(pattern, f"{function.logical_id}.{name}")
            sources.append(
                DynamoDBEventSource(
                    function_id=function.logical_id,
                    name=name,
                    table_id=table_id,
                    starting_position=str(template.resolve(props.get("StartingPosition")) or "TRIM_HORIZON"),
                    batch_size=_int(template.resolve(props.get("BatchSize")), 100),
                    maximum_batching_window=float(template.resolve(props.get("MaximumBatchingWindowInSeconds")) or 0),
                    function_response_types=tuple(props.get("FunctionResponseTypes") or ()),
                    bisect=bool(template.resolve(props.get("BisectBatchOnFunctionError"))),
                    maximum_retry_attempts=_int(template.resolve(props.get("MaximumRetryAttempts")), -1),
                    maximum_record_age=_int(template.resolve(props.get("MaximumRecordAgeInSeconds")), -1),
                    on_failure_queue_id=ref_target(on_failure),
                    filters=filters,
                    enabled=props.get("Enabled", True) not in (False, "false", "False"),
                )
            )
    return sources


# ------------------------------------------------------------------------------ records


def _plain(value: Any) -> Any:
    """A record as Lambda's JSON has it: binary base64, times as epoch seconds."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value


def _seq(record: Mapping[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


@dataclass
class _Shard:
    id: str
    parent: str | None
    iterator: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)  # read, not yet passed
    closed: bool = False  # read to its end: its children may start

    @property
    def done(self) -> bool:
        return self.closed and not self.pending


class StreamPoller(Poller):
    """The event-source mapping of one ``Type: DynamoDB`` event: a thread that reads and invokes."""

    def __init__(
        self,
        source: DynamoDBEventSource,
        table_name: str,
        function: LambdaFunction,
        dynamodb_endpoint: str | None,
        sqs_endpoint: str | None = None,
        on_failure_queue_url: str | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.source = source
        self.table_name = table_name
        self.function = function
        self.region = region
        self.on_failure_queue_url = on_failure_queue_url
        self._ddb = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=region)
        self._streams = boto3.client("dynamodbstreams", endpoint_url=dynamodb_endpoint, region_name=region)
        self._sqs = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name=region) if on_failure_queue_url else None
        self._shards: dict[str, _Shard] = {}
        self._first_listing = True
        self._shards_listed_at = 0.0
        self.stream_arn = ""
        super().__init__(f"ddbstream-{source.function_id}")

    def start(self) -> Self:
        self.stream_arn = self._ddb.describe_table(TableName=self.table_name)["Table"].get("LatestStreamArn", "")
        if not self.stream_arn:
            raise TemplateError(f"table {self.table_name} has no stream: give it a StreamSpecification")
        self._list_shards()  # LATEST means "from now": take the iterators before anything else happens
        return super().start()

    # -- reading

    def _list_shards(self) -> None:
        described = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for raw in described.get("Shards") or []:
            shard_id = raw["ShardId"]
            if shard_id in self._shards:
                continue
            shard = _Shard(shard_id, raw.get("ParentShardId"))
            # Shards there at the start follow StartingPosition; later ones are read from their start.
            position = self.source.starting_position if self._first_listing else "TRIM_HORIZON"
            if position == "LATEST" and "EndingSequenceNumber" in raw.get("SequenceNumberRange", {}):
                shard.closed = True  # a closed shard has nothing "from now"
            else:
                shard.iterator = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=position
                )["ShardIterator"]
            self._shards[shard_id] = shard
        self._first_listing = False
        self._shards_listed_at = time.monotonic()

    def _ready(self, shard: _Shard) -> bool:
        parent = self._shards.get(shard.parent or "")
        return not shard.done and (parent is None or parent.done)

    def _read(self, shard: _Shard) -> None:
        """Fill the shard's pending records up to a batch (closing it at its end)."""
        if shard.closed or shard.iterator is None or len(shard.pending) >= self.source.batch_size:
            return
        answer = self._streams.get_records(ShardIterator=shard.iterator, Limit=1000)
        shard.pending.extend(_plain(r) for r in answer.get("Records") or [])
        shard.iterator = answer.get("NextShardIterator")
        shard.closed = shard.iterator is None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._shards_listed_at >= _SHARDS_EVERY_SECONDS:
                    self._list_shards()
                worked = False
                for shard in list(self._shards.values()):
                    if self._ready(shard):
                        worked = self._step(shard) or worked
            except Exception:  # keep polling, as the mapping would
                log.exception("reading the stream of %s failed", self.table_name)
                worked = False
            if not worked:
                self._stop.wait(_IDLE_SECONDS)

    def _step(self, shard: _Shard) -> bool:
        """Read, and pass one batch of the shard to the function. Whether there was a batch."""
        self._read(shard)
        window_ends = time.monotonic() + self.source.maximum_batching_window
        while len(shard.pending) < self.source.batch_size and not shard.closed and time.monotonic() < window_ends:
            if self._stop.wait(_IDLE_SECONDS):
                return False
            self._read(shard)
        if not shard.pending:
            return False
        batch = shard.pending[: self.source.batch_size]
        self._deliver(shard.id, batch)
        del shard.pending[: len(batch)]
        return True

    # -- invoking

    def _wanted(self, batch: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        records = [{**r, "eventSourceARN": self.stream_arn} for r in batch]
        if not self.source.filters:
            return records
        return [r for r in records if any(matches(p, r) for p in self.source.filters)]

    def _deliver(self, shard_id: str, batch: Sequence[dict[str, Any]]) -> None:
        """Pass a batch through, retried by Lambda's rules, until it succeeds or is given up."""
        work = [self._wanted(batch)]
        while work and not self._stop.is_set():
            records = work.pop(0)
            attempts = 0
            while records and not self._stop.is_set():
                attempts += 1
                failed_at, raised = self._invoke(records)
                if failed_at is None:
                    break
                if raised and self.source.bisect and len(records) > 1:
                    half = len(records) // 2
                    work[:0] = [records[:half], records[half:]]
                    break
                records = records[failed_at:]
                if self._given_up(shard_id, records, attempts):
                    break
                self._stop.wait(min(0.2 * 2 ** (attempts - 1), _MAX_BACKOFF_SECONDS))

    def _invoke(self, records: list[dict[str, Any]]) -> tuple[int | None, bool]:
        """(index to retry from, whether the handler raised); (None, False) when all succeeded."""
        while not self._stop.is_set():
            if self.function.slots.acquire(0.2):
                break
        else:
            return None, False
        try:
            result = self.function.submit({"Records": records}, slot_held=True).result()
        except Exception:
            log.exception("%s failed on a stream batch of %d; retrying", self.function.name, len(records))
            return 0, True
        return self._failed_from(result, records), False

    def _failed_from(self, result: Any, records: list[dict[str, Any]]) -> int | None:
        """Where a partial batch response asks Lambda to retry from (None: complete success)."""
        if not self.source.report_batch_item_failures or not isinstance(result, dict):
            return None
        failures = result.get("batchItemFailures")
        if not failures:
            return None
        sequence = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(records)}
        positions = []
        for item in failures if isinstance(failures, list) else [None]:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or identifier not in sequence:
                return 0  # an empty, null or unknown identifier fails the whole batch
            positions.append(sequence[identifier])
        return min(positions)

    def _given_up(self, shard_id: str, records: list[dict[str, Any]], attempts: int) -> bool:
        """Past the retry or age limit: the records are dropped (their coordinates sent on)."""
        limit, max_age = self.source.maximum_retry_attempts, self.source.maximum_record_age
        oldest = float(records[0]["dynamodb"].get("ApproximateCreationDateTime") or time.time())
        if not ((limit >= 0 and attempts > limit) or (max_age >= 0 and time.time() - oldest > max_age)):
            return False
        log.error("%s: giving up on %d stream records after %d attempts", self.function.name, len(records), attempts)
        if self._sqs is not None and self.on_failure_queue_url:
            record = self._failure(shard_id, records, attempts)
            self._sqs.send_message(QueueUrl=self.on_failure_queue_url, MessageBody=json.dumps(record))
        return True

    def _failure(self, shard_id: str, records: list[dict[str, Any]], attempts: int) -> dict[str, Any]:
        """Lambda's invocation record for a dropped batch: where it was, not what it held."""

        def at(record: dict[str, Any]) -> str:
            seconds = float(record["dynamodb"].get("ApproximateCreationDateTime") or time.time())
            return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

        condition = (
            "RetryAttemptsExhausted" if attempts > self.source.maximum_retry_attempts >= 0 else "RecordAgeExceeded"
        )
        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function.arn,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": at(records[0]),
                "approximateArrivalOfLastRecord": at(records[-1]),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }


class StreamMappings(Mappings[StreamPoller]):
    """All ``Type: DynamoDB`` event-source mappings of a template."""

    def __init__(self, template: Template, host: FunctionHost, dynamodb_endpoint: str, sqs_endpoint: str) -> None:
        resources = host.resources
        super().__init__(
            [
                StreamPoller(
                    source,
                    resources.tables[source.table_id],
                    host.get(source.function_id),
                    dynamodb_endpoint,
                    sqs_endpoint,
                    resources.queues[source.on_failure_queue_id].url if source.on_failure_queue_id else None,
                    resources.region,
                )
                for source in dynamodb_event_sources(template)
                if source.enabled
            ]
        )
