"""Chat dialect cancel: POST /chat/cancel {"thread_id"}.

Its own function so it has its own reserved concurrency: a flood of new messages never
starves the stop button. The pending action and the reply in flight are flagged in one
write; 60 requests a minute per session; a store failure is the seed's 500. It imports only
the dialect's lean ``cancel.py`` (no request models, no runtime, no streaming).
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.dialects.chat.cancel import chat_cancel_app
from turnstop.http.api import report_cancel
from turnstop.observability.tracing import traced
from turnstop.platform import snapstart  # noqa: F401  (SnapStart: init work in the snapshot, restore hook)
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table)
app = chat_cancel_app(store, settings)


@traced(lazy=True)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    return report_cancel(logger, metrics, app.resolve(event, context))
