"""Sweeper: every minute, re-queue in-flight turns that nothing is moving, and re-send task
callbacks whose queue message is overdue.

A turn whose message was lost or dead-lettered, or whose worker died, would otherwise wait
for a redelivery that may never come. The worker decides what a re-queued turn needs (run
it, record a queued cancel, finalize a lost worker's turn), so the sweeper only re-sends.
Likewise a task callback whose message never went out (the worker died between the task's
finish and the send) or was lost: the delivery function decides what it needs.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from turnstop.observability.tracing import traced
from turnstop.platform.settings import Settings
from turnstop.store import Store
from turnstop.store.callbacks import CALLBACK_SHARDS, REDRIVE_AFTER_MS
from turnstop.store.heads import INFLIGHT_SHARDS

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table, queue_url=settings.turn_queue_url, callback_queue_url=settings.callback_queue_url)


@traced
@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    requeued: list[str] = []
    for shard in range(INFLIGHT_SHARDS):
        for turn_id in store.sweep.stale_turns(shard, int(settings.sweep_queued_after_seconds * 1000)):
            if store.sweep.mark_swept(turn_id, int(settings.sweep_again_after_seconds * 1000)):
                store.queue.requeue(turn_id)
                requeued.append(turn_id)
    callbacks: list[str] = []
    for shard in range(CALLBACK_SHARDS):
        for task_id in store.callbacks.overdue(shard):
            if store.callbacks.mark_redriven(task_id, REDRIVE_AFTER_MS):
                store.callbacks.send(task_id)
                callbacks.append(task_id)
    metrics.add_metric(name="SweptTurns", unit=MetricUnit.Count, value=len(requeued))
    metrics.add_metric(name="SweptCallbacks", unit=MetricUnit.Count, value=len(callbacks))
    if requeued or callbacks:
        logger.warning("re-queued stalled turns and callbacks", extra={"turn_ids": requeued, "task_ids": callbacks})
    return {"requeued": requeued, "callbacks": callbacks}
