"""What API Gateway makes of a Lambda result: payload 2.0 responses, authorizer answers, and
its own error responses (``{"message":"Not Found"}``...)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HttpResponse", "MalformedResponse", "evaluate_authorizer_response", "json_message", "map_response"]


class MalformedResponse(ValueError):
    """A Lambda result API Gateway would reject (it answers 500)."""


def evaluate_authorizer_response(result: Any, simple: bool) -> tuple[bool, Any]:
    """(authorized, context) from a payload 2.0 authorizer result; MalformedResponse if invalid."""
    if not isinstance(result, dict):
        raise MalformedResponse(f"authorizer returned {type(result).__name__}, not an object")
    context = result.get("context")
    if context is not None and not isinstance(context, dict):
        raise MalformedResponse("authorizer context must be an object")
    if simple:
        allowed = result.get("isAuthorized")
        if not isinstance(allowed, bool):
            raise MalformedResponse("simple authorizer response needs a boolean isAuthorized")
        return allowed, context
    statements = ((result.get("policyDocument") or {}).get("Statement")) or []
    if not isinstance(statements, list) or "principalId" not in result:
        raise MalformedResponse("IAM authorizer response needs principalId and policyDocument.Statement")
    effects = {str(s.get("Effect", "")).lower() for s in statements if isinstance(s, dict)}
    return ("allow" in effects and "deny" not in effects), context


@dataclass
class HttpResponse:
    """A response ready for the wire."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def json_message(status: int, message: str) -> HttpResponse:
    """API Gateway's own error responses: ``{"message":"Not Found"}``."""
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return HttpResponse(status, [("content-type", "application/json")], body)


def _status(result: dict[str, Any]) -> int:
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int | str) or not str(status).isdigit():
        raise MalformedResponse(f"statusCode {status!r} is not an integer")
    status = int(status)
    if not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {status} is out of range")
    return status


def _headers(result: dict[str, Any]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name), _header_value(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name), _header_value(value)))
    for cookie in result.get("cookies") or ():
        headers.append(("set-cookie", str(cookie)))
    return headers


def _body(result: dict[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResponse(f"body must be a string, not {type(body).__name__}")
    if result.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error as error:
            raise MalformedResponse(f"isBase64Encoded body is not base64: {error}") from None
    return body.encode("utf-8")


def map_response(result: Any) -> HttpResponse:
    """Map a payload 2.0 Lambda result to the HTTP response API Gateway sends."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # No statusCode: API Gateway treats the whole result as a JSON body with status 200.
        return HttpResponse(200, [("content-type", "application/json")], json.dumps(result).encode())
    status = _status(result)
    headers = _headers(result)
    payload = _body(result)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", "text/plain; charset=utf-8"))
    return HttpResponse(status, headers, payload)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
