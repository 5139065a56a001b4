"""Chat sign-in: GET /auth/login, GET /auth/callback (OAuth 2.0 code + PKCE against the OpenID
provider; the ID token verified against its JWKS), POST /auth/logout, GET /auth/session."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from turnstop.dialects.chat.handlers import auth_app
from turnstop.observability.tracing import traced
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
store = Store(settings.table)
app = auth_app(store, settings)


@traced
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
