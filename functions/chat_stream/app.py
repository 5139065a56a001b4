"""Chat dialect streaming route: POST /chat/stream (SSE: token, confirmation_required, then
done / cancelled / error).

``stream_handler`` is what the local runtime calls; ``wsgi`` is what the Lambda Web Adapter
serves behind the streaming REST API in AWS (``run.sh``). Same code on both paths.
"""

from aws_lambda_powertools import Logger

from turnstop.composition import turn_runner
from turnstop.dialects.chat.handlers import stream_app
from turnstop.dialects.chat.renderer import RENDERERS, after_finish
from turnstop.http.streaming import wsgi_app
from turnstop.observability.tracing import traced_wsgi
from turnstop.platform.settings import Settings
from turnstop.store import Store

logger = Logger()
settings = Settings.from_env()
store = Store(settings.table)
runner = turn_runner(store, settings, RENDERERS, on_finished=after_finish(store))
app = stream_app(store, settings, runner)
stream_handler = app.stream
wsgi = traced_wsgi(wsgi_app(stream_handler))

if __name__ == "__main__":
    import os

    from turnstop.http.streaming import serve_wsgi

    serve_wsgi(wsgi, int(os.environ.get("PORT", "8080")))
