"""Sessions dialect cancel: POST /v1/responses/{rid}/cancel.

Its own function so it has its own reserved concurrency: a flood of new turns never starves
the stop button. One conditional write, no read.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.dialects.sessions.cancel import response_cancel_app
from turnstop.http.api import report_cancel
from turnstop.observability.tracing import traced
from turnstop.platform import snapstart  # noqa: F401  (SnapStart: init work in the snapshot, restore hook)
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table)
app = response_cancel_app(store, settings)


@traced(lazy=True)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    return report_cancel(logger, metrics, app.resolve(event, context))
