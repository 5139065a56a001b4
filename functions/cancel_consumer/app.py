"""Cancel queue consumer: each SQS message asks to stop one turn, or is one page of a bulk
cancel of a scope (which queues its next page itself).

Malformed messages fail their record (and reach the DLQ after the queue's maxReceiveCount);
throttling fails the record so SQS redelivers it; every cancel outcome settles it.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from turnstop.cancels.bulk import BulkCancel
from turnstop.cancels.queue import BulkMessage, CancelRecord, handle, handle_bulk
from turnstop.observability.tracing import traced, traced_record
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table)
processor = BatchProcessor(event_type=EventType.SQS, model=CancelRecord)
bulk = BulkCancel(store, settings)


@traced_record
def record_handler(record: CancelRecord) -> str:
    if isinstance(record.body, BulkMessage):
        page = handle_bulk(bulk, record.body, record.messageId, record.receive_count)
        logger.info("bulk cancel page settled", extra={"bulk_id": page.bulk_id, "page": page.number})
        return page.bulk_id
    outcome = handle(store, record.body)
    metrics.add_metric(name=f"QueueCancel_{outcome.value}", unit=MetricUnit.Count, value=1)
    logger.info("queued cancel settled", extra={"turn_id": record.body.turn_id, "outcome": outcome.value})
    return outcome.value


@traced
@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
