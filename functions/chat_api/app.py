"""Chat dialect: POST /chat (the reply runs in this request), POST /chat/confirm,
GET /chat/threads/{thread_id}, and the CORS preflights of /chat/*."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.composition import turn_runner
from turnstop.dialects.chat.handlers import api_app
from turnstop.dialects.chat.renderer import RENDERERS, after_finish
from turnstop.observability.tracing import traced
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table)
runner = turn_runner(store, settings, RENDERERS, on_finished=after_finish(store))
app = api_app(store, settings, runner)


@traced
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
