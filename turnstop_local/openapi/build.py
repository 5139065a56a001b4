"""Build the OpenAPI 3.1 documents: one per dialect (and the admin endpoints), one merged.

Request bodies are the handlers' own pydantic models (``turnstop.dialects.*.models``); the
answers are the layer's wire models (``turnstop.dialects.*.answers``, which the tables import
directly). Every operation lists every status it can answer, each error with its dialect's
error shape and, where a seed shows one, the seed's exact body as an example.
"""

from __future__ import annotations

import json
from typing import Any, cast

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import turnstop_local.openapi.spec  # noqa: F401  (puts the layer on sys.path first)
from turnstop.cancels.queue import BulkMessage, CancelMessage
from turnstop_local.openapi.beyond import CHECKED_BEYOND, deep_merge
from turnstop_local.openapi.dialects import DIALECTS
from turnstop_local.openapi.merge import merge
from turnstop_local.openapi.requests import BulkScope
from turnstop_local.openapi.spec import (
    API_VERSION,
    COMMON_ERRORS,
    GATEWAY_STATUSES,
    IDEMPOTENCY_KEY,
    OPENAPI_VERSION,
    REASONS,
    REF,
    Dialect,
    GatewayError,
    Ok,
    Op,
    Param,
)

__all__ = ["DIALECTS", "document", "documents", "merged", "queue_cancel_schema", "render"]


def _schemas(models: list[type[BaseModel]]) -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    refs, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    by_model = {cast(type[BaseModel], m): dict(ref) for (m, _), ref in refs.items()}
    return by_model, _standard_keywords(top.get("$defs", {}))


# pydantic writes a numeric constraint on a union (``StrictFloat | StrictInt = Field(le=2)``) as
# its own keyword next to ``anyOf``; JSON Schema's names for them:
_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _standard_keywords(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_standard_keywords(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: _standard_keywords(v) for k, v in obj.items()}
    if "anyOf" in out and any(k in out for k in _BOUNDS):
        bounds = {_BOUNDS[k]: out.pop(k) for k in list(out) if k in _BOUNDS}
        out["anyOf"] = [
            {**branch, **bounds} if branch.get("type") in ("number", "integer") else branch for branch in out["anyOf"]
        ]
    return out


def _models_of(d: Dialect) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [d.error, GatewayError]
    for op in d.ops:
        if op.body is not None:
            found.append(op.body)
        for ok in op.ok.values():
            found.extend([ok.model] if ok.model else [])
            found.extend(ok.any_of)
            found.extend(model for _, model in ok.events)
    return list(dict.fromkeys(found))


def _parameter(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "in": p.where, "schema": p.schema, "required": p.required}
    if p.description:
        out["description"] = p.description
    return out


def _error_response(d: Dialect, op: Op, status: int, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    schema: dict[str, Any] = refs[d.error]
    description = REASONS[status]
    if status in GATEWAY_STATUSES:
        schema = {"anyOf": [refs[d.error], refs[GatewayError]]}
        description += '; API Gateway\'s own answer is `{"message": ...}`'
    media: dict[str, Any] = {"schema": schema}
    examples = op.error_examples.get(status, d.examples.get(status))
    if examples:
        media["examples"] = {name: {"value": body} for name, body in examples.items()}
    headers = ("X-Request-Id",) + (("Retry-After",) if status in (429, 503) else ())
    headers += op.counted_headers if status in op.counted_statuses else ()
    headers += ("x-should-retry",) if d.name == "omni" and status == 409 else ()
    return {"description": description, "content": {"application/json": media}, "headers": _headers(headers)}


HEADER_DOCS = {
    "X-Response-Id": "The turn's response id, before any event",
    "Location": "Where to read this resource (or, on a sign-in, where the browser goes next)",
    "X-Thread-Id": "The thread of this reply",
    "Set-Cookie": "`session_id` (HttpOnly; set on sign-in, cleared on sign-out) or the sign-in's `turnstop_login`",
    "X-Request-Id": "The request's id: the caller's X-Request-Id when it was valid, else one of ours",
    "Retry-After": "Seconds to wait before retrying, where known",
    "x-should-retry": "`false`: the official SDK must not resend a rejected turn",
    "Idempotent-Replayed": "`true` when the answer is the replay of an earlier request with this Idempotency-Key",
    "X-RateLimit-Limit": "Requests allowed per window (a minute) for this session",
    "X-RateLimit-Remaining": "Requests left in this window, this one counted",
    "X-RateLimit-Reset": "When this window ends, in epoch seconds",
}


def _headers(names: tuple[str, ...]) -> dict[str, Any]:
    return {h: {"description": HEADER_DOCS[h], "schema": {"type": "string"}} for h in names}


def _event_schema(ok: Ok, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    """One server-sent event (Open API 3.1: a streaming media type's ``schema`` describes each
    event): its name, its optional ``id``, and its ``data`` as JSON of the event's model."""
    kinds = [
        {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"enum": list(names)},
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": refs[model]},
            },
        }
        for names, model in ok.events
    ]
    return {"description": ok.sse, "anyOf": kinds}


def _ok_response(ok: Ok, refs: dict[type[BaseModel], dict[str, Any]], replays: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"description": ok.description}
    content: dict[str, Any] = {}
    if ok.model is not None:
        content["application/json"] = {"schema": refs[ok.model]}
        if ok.examples:
            content["application/json"]["examples"] = {name: {"value": v} for name, v in ok.examples.items()}
    elif ok.any_of:
        content["application/json"] = {"schema": {"anyOf": [refs[m] for m in ok.any_of]}}
    if ok.sse is not None:
        content["text/event-stream"] = {"schema": _event_schema(ok, refs)}
    if content:
        out["content"] = content
    out["headers"] = _headers(("X-Request-Id", *ok.headers, *(("Idempotent-Replayed",) if replays else ())))
    return out


def _operation(d: Dialect, op: Op, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": f"{d.name}.{op.operation_id}", "summary": op.summary, "tags": [d.name]}
    if op.description:
        out["description"] = op.description
    if op.params:
        out["parameters"] = [_parameter(p) for p in op.params]
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required, "content": {"application/json": {"schema": refs[op.body]}}}
    replays = d.name == "tasks" and IDEMPOTENCY_KEY in op.params  # tasks replay the first answer exactly
    responses: dict[str, Any] = {str(s): _ok_response(ok, refs, replays) for s, ok in op.ok.items()}
    for status in sorted(set(op.errors) | set(COMMON_ERRORS)):
        responses[str(status)] = _error_response(d, op, status, refs)
    out["responses"] = responses
    scheme = next(iter(d.security))
    out["security"] = [] if op.auth == "none" else [{scheme: []}]
    return out


def document(name: str) -> dict[str, Any]:
    d = DIALECTS[name]
    refs, defs = _schemas(_models_of(d))
    for model, extra in CHECKED_BEYOND.get(name, {}).items():
        deep_merge(defs[model.__name__], extra)
    paths: dict[str, dict[str, Any]] = {}
    for op in d.ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(d, op, refs)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": d.title, "version": API_VERSION, "description": d.description},
        "servers": [{"url": "http://127.0.0.1:3000", "description": "the local runtime (make run)"}],
        "tags": [{"name": d.name, "description": d.description}],
        "paths": paths,
        "components": {"schemas": defs, "securitySchemes": d.security},
    }


def queue_cancel_schema() -> dict[str, Any]:
    """The cancel queue's message, either kind, as one JSON Schema (2020-12)."""
    refs, defs = _schemas([CancelMessage, BulkMessage, BulkScope])
    defs = json.loads(json.dumps(defs).replace("#/components/schemas/", "#/$defs/"))
    defs["BulkMessage"]["properties"]["scope"] = {"$ref": "#/$defs/BulkScope"}
    defs["BulkMessage"]["properties"]["page"]["description"] = "set by turnstop on a bulk cancel's further pages"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "queue-cancel.schema.json",
        "title": "turnstop cancel queue message",
        "description": "One message of the cancel queue (output CancelQueueUrl): stop one turn "
        "(`turn_id` + `tenant`), or every in-flight turn of a scope (`scope`, as POST /v1/admin/cancels).",
        "oneOf": [{"$ref": "#/$defs/CancelMessage"}, {"$ref": "#/$defs/BulkMessage"}],
        "$defs": defs,
    }


def documents() -> dict[str, dict[str, Any]]:
    """Every file ``make openapi`` writes, by name."""
    out = {f"{name}.json": document(name) for name in DIALECTS}
    out["queue-cancel.schema.json"] = queue_cancel_schema()
    return out


def merged() -> dict[str, Any]:
    """Every dialect in one document (what the local runtime serves at ``/openapi.json``)."""
    return merge({name: document(name) for name in DIALECTS})


def render(doc: dict[str, Any]) -> str:
    """Deterministic text: sorted keys, two-space indent, a trailing newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
