"""Omni dialect (seed 000): threads, messages, thread history and pollable responses.

POST/GET /v1/omni-ai/threads, GET /v1/omni-ai/threads/{thread_id},
POST/GET /v1/omni-ai/threads/{thread_id}/messages, GET /v1/omni-ai/threads/{thread_id}/response,
GET /v1/omni-ai/responses/{response_id}. The DELETE cancel has its own function (omni_cancel).
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.dialects.omni.handlers import api_app
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
