"""llm dialect cancel: POST /api/v1/llm/responses/{response_id}/cancel.

Its own function so it has its own reserved concurrency: a flood of new responses never starves
the stop button. One conditional write decides (background, tenant and end user are in its
condition); the answer is the response object with the output committed so far.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.dialects.llm.cancel import llm_cancel_app
from turnstop.http.api import report_cancel
from turnstop.observability.tracing import traced
from turnstop.platform import snapstart  # noqa: F401  (SnapStart: init work in the snapshot, restore hook)
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table)
app = llm_cancel_app(store, settings)


@traced(lazy=True)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    return report_cancel(logger, metrics, app.resolve(event, context))
