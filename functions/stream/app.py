"""A dialect's streaming function (SSE): the app its ``TURNSTOP_APP`` names (template.yaml),
e.g. ``turnstop.dialects.sessions.handlers:stream_app``. A streaming request runs its turn
itself (the first reader needs no polling), under the runner ``function_app`` gives it.

``stream_handler`` is what the local runtime calls; ``wsgi`` is what the Lambda Web Adapter
serves behind the streaming REST API in AWS (``run.sh``). Same code on both paths.
"""

from aws_lambda_powertools import Logger

from turnstop.composition import function_app
from turnstop.http.streaming import wsgi_app
from turnstop.observability.tracing import traced_wsgi
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
settings = Settings.from_env()
store = Store(settings.table, queue_url=settings.turn_queue_url)
served = function_app(store, settings)
app, runner = served.app, served.runner
stream_handler = app.stream
wsgi = traced_wsgi(wsgi_app(stream_handler))

if __name__ == "__main__":
    import os

    from turnstop.http.streaming import serve_wsgi

    serve_wsgi(wsgi, int(os.environ.get("PORT", "8080")))
