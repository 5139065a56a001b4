"""A dialect's JSON API function: its routes other than the cancel and the streams.

The app is the one its ``TURNSTOP_APP`` names (template.yaml sets it on each function, e.g.
``turnstop.dialects.omni.handlers:api_app``); ``turnstop.composition.function_app`` builds it,
with a turn runner if it runs turns in the request (chat's replies).
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.composition import function_app
from turnstop.observability.tracing import traced
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table, queue_url=settings.turn_queue_url)
served = function_app(store, settings)
app, runner = served.app, served.runner


@traced
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
