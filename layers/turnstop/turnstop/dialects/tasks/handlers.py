"""Routes of the tasks dialect. The cancel has its own resolver (``cancel.py``) so it runs in
its own function (reserved concurrency); create, read and list share one function.

Every route checks the caller's X-Request-Id first (a malformed one is a 400, not replaced),
then the key (401).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from turnstop.auth import Principal
from turnstop.dialects.service import Enqueue
from turnstop.dialects.tasks import ids, models, wire
from turnstop.dialects.tasks.service import Tasks
from turnstop.http.api import TurnstopResolver, json_response, require_principal
from turnstop.http.body import max_duration_ms
from turnstop.idempotency.requests import idempotency_binding
from turnstop.platform.settings import Settings
from turnstop.store import Store
from turnstop.webhooks import Resolve, system_resolve


def _caller(app: TurnstopResolver, store: Store) -> Principal:
    ids.strict_request_id(app.event)
    return require_principal(app.event, store)


def api_app(
    store: Store, settings: Settings, enqueue: Enqueue | None = None, resolve: Resolve = system_resolve
) -> TurnstopResolver:
    app = TurnstopResolver(wire.SHAPE)
    tasks = Tasks(store, settings, enqueue, resolve=resolve)

    @app.post("/v1/tasks")
    def create() -> Response:
        principal = _caller(app, store)
        body = models.parse_create(app.event, settings.max_body_bytes)
        idempotency = idempotency_binding(app.event, principal.tenant, principal.end_user)
        links_base = models.links_base(app.event, settings.public_base_url)
        limit_ms = max_duration_ms(app.event, body.max_duration_seconds)
        return tasks.create(principal, body, idempotency, links_base, max_duration_ms=limit_ms).response()

    @app.get("/v1/tasks")
    def list_tasks() -> Response:
        principal = _caller(app, store)
        status, limit, after = models.parse_list_query(app.current_event.query_string_parameters or {})
        return json_response(200, tasks.list_tasks(principal, status, limit, after))

    @app.get("/v1/tasks/<task_id>")
    def get_task(task_id: str) -> Response:
        return json_response(200, tasks.get(_caller(app, store), task_id))

    return app
