"""Turn events out: the table's stream → one EventBridge event per terminal transition.

The event-source mapping's filter passes only turn heads leaving queued/running for a terminal
status; anything else that gets through is skipped. Events go out ten per PutEvents call; on a
failed entry the batch reports that record's sequence number, so Lambda retries from it
(earlier records are done; later ones may go out twice: consumers dedupe by ``event_id``).
Each end is counted by dialect and status, each cancel by dialect and source, with its latency
(flag seen − cancel requested: ``CancelLatency``): ``turn_events.record_metrics``.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from turnstop.observability.tracing import traced
from turnstop.platform.settings import Settings
from turnstop.turn_events import EventBridgeSink, FileSink, Sink, record_metrics, terminal_event

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
sink: Sink = FileSink(settings.events_file) if settings.events_file else EventBridgeSink(settings.event_bus_name)


@traced
@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    found = [(r["dynamodb"]["SequenceNumber"], e) for r in event.get("Records", []) if (e := terminal_event(r))]
    failed = set(sink.put([e for _, e in found]))
    for i, (_, e) in enumerate(found):
        if i in failed:
            continue
        record_metrics(metrics, e)
    if failed:
        first = min(failed)
        logger.warning("events not published; retrying from the first", extra={"failed": len(failed)})
        return {"batchItemFailures": [{"itemIdentifier": found[first][0]}]}
    logger.info("turn events published", extra={"events": len(found)})
    return {"batchItemFailures": []}
