"""Tasks dialect cancel: POST /v1/tasks/{task_id}/cancel (optional {"reason": "..."}).

Its own function so it has its own reserved concurrency: a flood of new tasks never starves
the stop button. One conditional write decides (queued → 200 cancelled, running → 202, already
terminal → 200 unchanged); the refund is written when the task ends. With an Idempotency-Key
the first answer is kept and replayed.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.dialects.tasks.cancel import tasks_cancel_app
from turnstop.http.api import report_cancel
from turnstop.observability.tracing import traced
from turnstop.platform import snapstart  # noqa: F401  (SnapStart: init work in the snapshot, restore hook)
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table)
app = tasks_cancel_app(store, settings)


@traced(lazy=True)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    return report_cancel(logger, metrics, app.resolve(event, context))
