"""Task callbacks: each SQS message asks to deliver one finished task's signed callback.

An attempt that fails is recorded and the next one queued with backoff (SQS DelaySeconds), so a
settled message is never retried by SQS itself; a record fails only when DynamoDB or SQS do,
and then comes back after the visibility timeout (or reaches the DLQ). See
turnstop.dialects.tasks.callbacks for the delivery rules.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from turnstop.dialects.tasks.callbacks import CallbackRecord, Deliverer
from turnstop.observability.tracing import traced
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table, callback_queue_url=settings.callback_queue_url)
deliverer = Deliverer(store, settings)
processor = BatchProcessor(event_type=EventType.SQS, model=CallbackRecord)


def record_handler(record: CallbackRecord) -> str:
    outcome = deliverer.deliver(record.body.task_id)
    metrics.add_metric(name=f"Callback_{outcome}", unit=MetricUnit.Count, value=1)
    logger.info("callback message settled", extra={"task_id": record.body.task_id, "outcome": outcome})
    return outcome


@traced
@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
