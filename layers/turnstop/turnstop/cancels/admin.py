"""The operators' stop button: ``POST /v1/admin/cancels`` (a bulk cancel of a scope of the
caller's own tenant) and ``GET /v1/admin/cancels/{id}`` (its report). Its own function with
reserved concurrency, like every cancel endpoint, and as lean (no pydantic, no runtime).

Only keys created as admin keys (``keys create --admin``) may call it, and only for their own
tenant: another tenant's scope is refused (403) before anything is read. Acting on behalf of an
end user (``X-On-Behalf-Of``), as every other route, narrows it to that end user: the scope is
that end user's (naming another is 403) and only reports of such scopes can be read. The request works
through pages itself for up to ``TURNSTOP_BULK_CANCEL_SYNC_SECONDS`` and answers ``200`` with
the whole report; a scope larger than that is handed on to the cancel queue page by page and
the answer is ``202`` with the report so far (``Location`` names where to follow it).

Errors: ``{"error": {"type", "message", "request_id"}}``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from aws_lambda_powertools.event_handler import Response

from turnstop.auth import Principal
from turnstop.cancels.bulk import BulkCancel, Page, Send, report_json
from turnstop.core import errors
from turnstop.core.bulk import parse_request
from turnstop.core.ids import new_id, plausible
from turnstop.http.api import TurnstopResolver, json_response, require_principal
from turnstop.http.body import json_object
from turnstop.http.errors import ErrorInfo, ErrorShape
from turnstop.platform.settings import Settings
from turnstop.store import Store

BASE = "/v1/admin/cancels"
# Time a request keeps for itself after its last page (the HTTP API gives up at 30 s).
MARGIN_MS = 5_000


def _error_body(info: ErrorInfo) -> dict[str, object]:
    return {"error": {"type": info.code, "message": info.message, "request_id": info.request_id}}


SHAPE = ErrorShape(_error_body, not_found_message="No such route")


def _admin(app: TurnstopResolver, store: Store) -> Principal:
    principal = require_principal(app.event, store)
    if not principal.admin:
        raise errors.Forbidden("This endpoint needs an admin key (keys create --admin)")
    return principal


def admin_cancels_app(
    store: Store, settings: Settings, send: Send | None = None, monotonic: Callable[[], float] = time.monotonic
) -> TurnstopResolver:
    app = TurnstopResolver(SHAPE)
    bulk = BulkCancel(store, settings, send)

    @app.post(BASE)
    def start() -> Response:
        principal = _admin(app, store)
        body = json_object(app.event, settings.max_body_bytes)
        request = parse_request(body, caller_tenant=principal.tenant)
        if principal.end_user is not None:
            if request.scope.end_user not in (None, principal.end_user):
                raise errors.Forbidden("A key acting on behalf of an end user may stop only that end user's turns")
            request = dataclasses.replace(
                request, scope=dataclasses.replace(request.scope, end_user=principal.end_user)
            )
        if request.actor is None:
            request = dataclasses.replace(request, actor=principal.key_id or None)
        report, page = bulk.open(new_id("bulk_"), request, "admin")
        until = monotonic() + settings.bulk_cancel_sync_seconds
        remaining = app.remaining_ms
        next_page: Page | None = page
        while next_page is not None:
            out_of_time = monotonic() >= until or (remaining is not None and remaining() < MARGIN_MS)
            if out_of_time:  # the rest goes through the queue, a page per message
                bulk.send(next_page.message())
                break
            next_page = bulk.run_page(next_page).following
        current = store.bulk.get(report.id) or report
        status = 200 if next_page is None else 202
        return json_response(status, report_json(current), {"Location": f"{BASE}/{report.id}"})

    @app.get(f"{BASE}/<bulk_id>")
    def read(bulk_id: str) -> Response:
        principal = _admin(app, store)
        report = store.bulk.get(bulk_id) if plausible(bulk_id) else None
        theirs = (
            principal.end_user is not None
            and report is not None
            and report.request.scope.end_user != principal.end_user
        )
        if report is None or report.tenant != principal.tenant or theirs:
            raise errors.NotFound("No such bulk cancel")
        return json_response(200, report_json(report))

    return app
