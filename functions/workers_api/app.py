"""Remote workers' API: claim a remote route's offer, stream its events, finish it
(``turnstop.worker.api``, docs/agents.md). Authenticated by the route's worker key."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.observability.tracing import traced
from turnstop.platform import snapstart  # noqa: F401  (SnapStart: init work in the snapshot, restore hook)
from turnstop.platform.settings import Settings
from turnstop.store import Store
from turnstop.worker.api import worker_api_app

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table)
app = worker_api_app(store, settings)


@traced(lazy=True)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
