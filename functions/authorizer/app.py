"""The APIs' Lambda authorizer (the HTTP API's, and the streaming REST API's: turnstop.auth.authorizer_answer
answers each in its format): resolves a Bearer key into a principal.

It reads the ``Authorization: Bearer <key>`` header and nothing else. It never denies: an
unknown or missing key passes on as ``anonymous`` so that each dialect answers with its own
documented 401 shape (API Gateway's own denial is a bare 403).

Cookies are not credentials here: the browser routes (``/chat*``, ``/auth/*``) opt out of this
authorizer (``Authorizer: NONE``) and their functions resolve the ``session_id`` cookie
themselves (``dialects/chat/web.signed_in``), as the streaming chat function behind the
streaming REST API does too.
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from turnstop.auth import authenticate, authorizer_answer
from turnstop.observability.tracing import traced
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
settings = Settings.from_env()
store = Store(settings.table)


@traced
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict, context: object) -> dict:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    principal = authenticate(store, headers)
    if principal is None:
        return authorizer_answer(event, {"anonymous": "true"}, "anonymous")
    logger.append_keys(tenant=principal.tenant, key_id=principal.key_id)
    return authorizer_answer(event, principal.to_context(), principal.key_id)
