"""The events API Gateway (HTTP API) sends to Lambda: payload format 2.0 requests, and the
REQUEST event of a Lambda authorizer."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from turnstop_local.template import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, Authorizer, Route

__all__ = ["LOCAL_API_ID", "build_authorizer_event", "build_http_event", "new_request_id"]

LOCAL_API_ID = "turnstoplocal"
# Request bodies of these media types reach Lambda as text; everything else (a missing
# Content-Type and application/x-www-form-urlencoded included) is base64-encoded, as in AWS.
_TEXT_MEDIA_TYPES = ("application/json", "application/xml", "application/javascript")


def new_request_id() -> str:
    """An id shaped like API Gateway's (``"JKJaXmPLvHcESHA="``)."""
    return base64.b64encode(os.urandom(11)).decode()


def _is_text(headers: Mapping[str, str], body: bytes) -> bool:
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not (media_type.startswith("text/") or media_type in _TEXT_MEDIA_TYPES):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _headers_and_cookies(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Lower-cased headers, repeated ones joined with commas; cookies apart, as payload 2.0 has them."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    return merged, cookies


def _query_parameters(raw_query: str) -> dict[str, str]:
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    return query


def _add_forwarding_headers(merged: dict[str, str], source_ip: str, now: datetime, body: bytes) -> None:
    host = merged.get("host", "localhost")
    merged.setdefault("x-forwarded-for", source_ip)
    merged.setdefault("x-forwarded-port", host.rpartition(":")[2] if ":" in host else "80")
    merged.setdefault("x-forwarded-proto", "http")
    merged.setdefault("x-amzn-trace-id", f"Root=1-{int(now.timestamp()):08x}-{os.urandom(12).hex()}")
    if body:
        merged.setdefault("content-length", str(len(body)))


def _request_context(
    *,
    route: Route,
    method: str,
    raw_path: str,
    protocol: str,
    source_ip: str,
    headers: Mapping[str, str],
    request_id: str | None,
    now: datetime,
    account_id: str,
    api_id: str,
) -> dict[str, Any]:
    domain = headers.get("host", "localhost").split(":", 1)[0]
    return {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": method.upper(),
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id or new_request_id(),
        "routeKey": route.route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }


def build_http_event(
    *,
    route: Route,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    path_parameters: Mapping[str, str],
    source_ip: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
    request_id: str | None = None,
    now: datetime | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
    api_id: str = LOCAL_API_ID,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event, as AWS builds it."""
    now = now or datetime.now(UTC)
    merged, cookies = _headers_and_cookies(headers)
    _add_forwarding_headers(merged, source_ip, now, body)
    query = _query_parameters(raw_query)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    event["requestContext"] = _request_context(
        route=route,
        method=method,
        raw_path=raw_path,
        protocol=protocol,
        source_ip=source_ip,
        headers=merged,
        request_id=request_id,
        now=now,
        account_id=account_id,
        api_id=api_id,
    )
    is_base64 = False
    if body:
        if _is_text(merged, body):
            event["body"] = body.decode("utf-8")
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            is_base64 = True
    event["isBase64Encoded"] = is_base64
    return event


def build_authorizer_event(
    http_event: Mapping[str, Any],
    authorizer: Authorizer,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """The payload 2.0 REQUEST authorizer event for a request."""
    context = http_event["requestContext"]
    route_arn = (
        f"arn:aws:execute-api:{region}:{context['accountId']}:{context['apiId']}/{context['stage']}/"
        f"{context['http']['method']}{http_event['rawPath']}"
    )
    headers = http_event.get("headers") or {}
    query = http_event.get("queryStringParameters") or {}
    identity = [headers.get(h.lower(), "") for h in authorizer.identity_headers] + [
        query.get(q, "") for q in authorizer.identity_query_strings
    ]
    event: dict[str, Any] = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": route_arn,
        "identitySource": identity,
        "routeKey": http_event["routeKey"],
        "rawPath": http_event["rawPath"],
        "rawQueryString": http_event["rawQueryString"],
    }
    for key in ("cookies", "headers", "queryStringParameters"):
        if key in http_event:
            event[key] = http_event[key]
    event["requestContext"] = context
    if "pathParameters" in http_event:
        event["pathParameters"] = http_event["pathParameters"]
    return event
