"""A dialect's cancel function: the app its ``TURNSTOP_APP`` names (template.yaml), e.g.
``turnstop.dialects.omni.cancel:omni_cancel_app``.

Each cancel is a function of its own so it has its own reserved concurrency: a flood of new
turns never starves the stop button. Its cold start loads its dialect's cancel module and
nothing heavy (no runner, no pydantic): ``registry.served`` imports only the module named.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.dialects.registry import served
from turnstop.http.api import report_cancel
from turnstop.observability.tracing import traced
from turnstop.platform import snapstart  # noqa: F401  (SnapStart: init work in the snapshot, restore hook)
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table)
app = served()(store, settings)


@traced(lazy=True)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    return report_cancel(logger, metrics, app.resolve(event, context))
