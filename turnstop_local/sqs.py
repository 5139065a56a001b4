"""Lambda's SQS event-source mapping, locally: poll each queue, invoke, delete what succeeded.

One poller thread per SQS event of the template. It long-polls the queue, builds the event
exactly as Lambda does (``Records[]`` with ``messageId``, ``receiptHandle``, ``attributes``...),
and invokes the function in its pool. It receives only while it holds one of the function's
concurrency slots (shared with every other invocation of the function) and one of its own
(``ScalingConfig.MaximumConcurrency``, when set), so it never receives a batch it cannot invoke:
a busy function leaves its messages in the queue rather than pushing them towards the DLQ.

Results follow Lambda's rules: a batch that succeeds is deleted; a handler exception deletes
nothing; with ``ReportBatchItemFailures`` only the reported items stay (an empty, unknown or
malformed ``itemIdentifier`` fails the whole batch). Messages that stay reappear after the
queue's visibility timeout, and moto's SQS moves a message to the dead-letter queue once it has
been received more than ``maxReceiveCount`` times (the RedrivePolicy is set on the local queue),
as SQS itself does.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import boto3

from turnstop_local.lambda_host import FunctionHost, LambdaFunction, Throttled
from turnstop_local.pollers import Mappings, Poller
from turnstop_local.template import DEFAULT_REGION, QueueRef, SqsEventSource, Template

__all__ = ["EventSourceMappings", "SqsPoller", "build_sqs_event", "messages_to_delete"]

log = logging.getLogger("turnstop_local.sqs")

_RECEIVE_WAIT_SECONDS = 1  # short long-poll: a stop request is noticed within a second
_ERROR_BACKOFF_SECONDS = 1.0


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """An SQS MessageAttributeValue in the shape of Lambda's SQS event (camelCase, base64 binary)."""
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        raw = value["BinaryValue"]
        attribute["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
    attribute["stringListValues"] = list(value.get("StringListValues") or [])
    attribute["binaryListValues"] = [
        base64.b64encode(v).decode() if isinstance(v, bytes) else v for v in value.get("BinaryListValues") or []
    ]
    attribute["dataType"] = value["DataType"]
    return attribute


def build_sqs_event(
    messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    """The event Lambda passes for a batch of ReceiveMessage results."""
    records = []
    for message in messages:
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes") or {}),
            "messageAttributes": {
                k: _message_attribute(v) for k, v in (message.get("MessageAttributes") or {}).items()
            },
        }
        if message.get("MD5OfMessageAttributes"):
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        record.update(
            {
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
        records.append(record)
    return {"Records": records}


def messages_to_delete(result: Any, message_ids: Sequence[str], report_batch_item_failures: bool) -> list[str]:
    """The message ids Lambda deletes after a successful invocation returned ``result``."""
    if not report_batch_item_failures or not isinstance(result, dict):
        # Without ReportBatchItemFailures any successful return is a complete success; with it,
        # a null / empty EventResponse is one too.
        return list(message_ids)
    failures = result.get("batchItemFailures")
    if failures is None:
        return list(message_ids)
    if not isinstance(failures, list):
        return []
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            # Empty, null or unknown identifiers make Lambda treat the whole batch as failed.
            return []
        failed.add(identifier)
    return [m for m in message_ids if m not in failed]


class SqsPoller(Poller):
    """The event-source mapping of one SQS event: a thread that polls and invokes."""

    def __init__(
        self,
        source: SqsEventSource,
        queue: QueueRef,
        function: LambdaFunction,
        sqs_endpoint: str | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.source = source
        self.queue = queue
        self.function = function
        self.region = region
        self._sqs = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name=region)
        # The mapping's own cap (MaximumConcurrency); the function's slots are taken as well.
        self.concurrency = function.concurrency
        if source.maximum_concurrency is not None:
            self.concurrency = min(self.concurrency, source.maximum_concurrency)
        self._slots = threading.BoundedSemaphore(max(1, self.concurrency))
        if self.concurrency == 0:
            self._slots.acquire()  # a function reserved at 0 never runs: nothing is received
        self._in_flight: set[Future[Any]] = set()
        self._in_flight_lock = threading.Lock()
        super().__init__(f"sqs-{source.function_id}-{source.name}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait for the poller (and, up to ``timeout``, its invocations)."""
        super().stop(timeout)
        deadline = time.monotonic() + timeout
        with self._in_flight_lock:
            pending = list(self._in_flight)
        for future in pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                future.result(remaining)
            except Exception:  # reported by _complete already
                pass

    def _take_slots(self) -> bool:
        """One of the mapping's slots and one of the function's, or neither (within 0.2 s each)."""
        if not self._slots.acquire(timeout=0.2):
            return False
        try:
            self.function.acquire_slot(wait=0.2)
        except Throttled:
            self._slots.release()
            return False
        return True

    def _release_slots(self) -> None:
        self.function.slots.release()
        self._slots.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._take_slots():
                continue
            try:
                messages = self._receive_batch()
            except Exception:  # keep polling, as the mapping would
                self._release_slots()
                if not self._stop.is_set():
                    log.warning("receiving from %s failed:\n%s", self.queue.name, traceback.format_exc())
                self._stop.wait(_ERROR_BACKOFF_SECONDS)
                continue
            if not messages:
                self._release_slots()
                continue
            self._invoke(messages)

    def _receive_batch(self) -> list[dict[str, Any]]:
        batch_size = max(1, self.source.batch_size)
        window_ends = time.monotonic() + self.source.maximum_batching_window
        messages: list[dict[str, Any]] = []
        while not self._stop.is_set():
            response = self._sqs.receive_message(
                QueueUrl=self.queue.url,
                MaxNumberOfMessages=min(batch_size - len(messages), 10),
                WaitTimeSeconds=_RECEIVE_WAIT_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages.extend(response.get("Messages") or [])
            # Batches larger than one receive are gathered only within the batching window.
            if len(messages) >= batch_size or time.monotonic() >= window_ends:
                break
        return messages

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = build_sqs_event(messages, self.queue.arn, self.region)
        try:
            # The function's slot taken in _take_slots is released when the invocation ends.
            future = self.function.submit(event, slot_held=True)
        except RuntimeError:  # the pool is shut down: we are stopping (the function's slot is released)
            self._slots.release()
            return
        with self._in_flight_lock:
            self._in_flight.add(future)
        future.add_done_callback(lambda done: self._complete(done, messages))

    def _complete(self, future: Future[Any], messages: Iterable[Mapping[str, Any]]) -> None:
        try:
            if future.cancelled():  # the pool was shut down before the batch ran
                return
            by_id = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
            error = future.exception()
            if error is not None:
                log.error(
                    "%s failed on a batch of %d from %s; the messages return after the visibility timeout:\n%s",
                    self.function.name,
                    len(by_id),
                    self.queue.name,
                    "".join(traceback.format_exception(error)),
                )
                return
            to_delete = messages_to_delete(future.result(), list(by_id), self.source.report_batch_item_failures)
            if len(to_delete) < len(by_id):
                log.info("%s: %d of %d messages failed", self.function.name, len(by_id) - len(to_delete), len(by_id))
            self._delete([by_id[m] for m in to_delete])
        except Exception:  # never kill the pool thread
            log.exception("completing a batch from %s failed", self.queue.name)
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(future)
            self._slots.release()

    def _delete(self, receipt_handles: list[str]) -> None:
        for start in range(0, len(receipt_handles), 10):
            chunk = receipt_handles[start : start + 10]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)],
            )
            for failure in response.get("Failed") or ():
                log.warning("deleting a message from %s failed: %s", self.queue.name, failure)


class EventSourceMappings(Mappings[SqsPoller]):
    """All SQS event-source mappings of a template."""

    def __init__(self, template: Template, host: FunctionHost, sqs_endpoint: str | None = None) -> None:
        super().__init__(
            [
                SqsPoller(
                    source,
                    host.resources.queues[source.queue_id],
                    host.get(source.function_id),
                    sqs_endpoint,
                    host.resources.region,
                )
                for source in template.sqs_event_sources
                if source.enabled
            ]
        )
