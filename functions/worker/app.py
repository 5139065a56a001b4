"""Worker: runs queued turns from SQS, one message per turn.

After a turn ends, its dialect's hook runs (tasks queue their callback's delivery).
Each record is processed idempotently: a turn that is already running elsewhere is reported
as a batch item failure (it comes back later), a turn whose worker died is finalized
(cancelled if a cancel was requested, else failed) and never run twice.
"""

import json

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from turnstop.composition import turn_runner
from turnstop.dialects.registry import after_finish, all_renderers
from turnstop.observability.tracing import traced, traced_record
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table, callback_queue_url=settings.callback_queue_url)
# after a finish it wrote: queue a task's callback (a lost send is re-sent by the sweeper)
runner = turn_runner(store, settings, all_renderers(), on_finished=after_finish(store))
processor = BatchProcessor(event_type=EventType.SQS)


@traced_record
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> str:
    turn_id = json.loads(record.body)["turn_id"]
    # End the turn cleanly (max_duration) before Lambda's timeout would kill it mid-step.
    result = runner.handle(turn_id, remaining_ms=lambda_context.get_remaining_time_in_millis)
    logger.info("turn settled", extra={"turn_id": turn_id, "result": result})
    return result


@traced
@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
