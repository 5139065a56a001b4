"""Operators' bulk cancel: POST /v1/admin/cancels, and GET /v1/admin/cancels/{id} for its report.

Its own function with its own reserved concurrency, like every cancel endpoint. Admin keys
only, for their own tenant; each turn of the scope gets the single conditional cancel write.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.cancels.admin import admin_cancels_app
from turnstop.http.api import report_cancel
from turnstop.observability.tracing import traced
from turnstop.platform import snapstart  # noqa: F401  (SnapStart: init work in the snapshot, restore hook)
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table)
app = admin_cancels_app(store, settings)


@traced(lazy=True)  # a cancel endpoint: no X-Ray SDK on its cold start (docs/observability.md)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    return report_cancel(logger, metrics, app.resolve(event, context))
