"""Sessions dialect: POST /v1/sessions, DELETE /v1/sessions/{id}, GET /v1/ledger."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.dialects.sessions.handlers import api_app
from turnstop.observability.tracing import traced
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table, queue_url=settings.turn_queue_url)
app = api_app(store, settings)


@traced
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
