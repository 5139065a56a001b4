"""The operators' admin OpenAPI table: every operation, its answers and the seed's examples."""

from __future__ import annotations

import turnstop_local.openapi.spec  # noqa: F401  (puts the layer on sys.path first)
from turnstop.dialects.sessions.answers import BulkCancelReport, SessionsError
from turnstop_local.openapi.requests import BulkCancelRequest
from turnstop_local.openapi.spec import (
    KEYED,
    Dialect,
    Ok,
    Op,
    path,
)

ADMIN = Dialect(
    "admin",
    "turnstop admin API",
    "The operators' bulk cancel: every in-flight turn of a scope of the caller's own tenant. "
    'Admin keys only (`keys create --admin`). Errors: `{"error": {"type", "message", "request_id"}}`.',
    SessionsError,
    (
        Op(
            "POST",
            "/v1/admin/cancels",
            "startBulkCancel",
            "Stop every in-flight turn of a scope",
            {
                200: Ok("Done: the whole report", BulkCancelReport, headers=("Location",)),
                202: Ok("Handed to the cancel queue: the report so far", BulkCancelReport, headers=("Location",)),
            },
            (401, 403),
            BulkCancelRequest,
            True,
            KEYED,
        ),
        Op(
            "GET",
            "/v1/admin/cancels/{bulk_id}",
            "getBulkCancel",
            "A bulk cancel's report",
            {200: Ok("The report", BulkCancelReport)},
            (401, 403),
            params=(path("bulk_id"), *KEYED),
        ),
    ),
    {
        403: {
            "not_admin": {
                "error": {
                    "type": "forbidden",
                    "message": "This endpoint needs an admin key (keys create --admin)",
                    "request_id": "9b1c",
                }
            }
        }
    },
    {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "An admin key: `Authorization: Bearer <key>`."}},
)
