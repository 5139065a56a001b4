"""HTTP to the API: one ``httpx`` client, and every failure turned into a :class:`CliError`
with its exit code, in one place."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
from httpx_sse import EventSource, connect_sse

from turnstop_cli import __version__
from turnstop_cli.errors import CliError, ExitCode
from turnstop_cli.target import Target

# A stream sends a `: keep-alive` comment every 15 s at the latest: 45 s of silence is a lost connection.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=45.0)
# Longer than the HTTP API's own 30 s integration timeout, so the API's answer arrives first.
REQUEST_TIMEOUT = httpx.Timeout(10.0, read=35.0)


def error_message(body: Any, fallback: str) -> str:
    """The human message of any dialect's error shape:
    ``{"error": {"message"}}`` (sessions, tasks, llm, omni, admin) or ``{"error": code, "message"}`` (chat)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
        if isinstance(error, str):
            return error
    return fallback


def exit_code_for(status: int) -> ExitCode:
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    return ExitCode.API_ERROR


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class Api:
    """The API of one :class:`Target`. ``transport`` replaces the network (tests)."""

    def __init__(
        self, target: Target, *, chat_session: str | None = None, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.target = target
        headers = {"User-Agent": f"turnstop-cli/{__version__}"}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        self.chat_session = chat_session
        self.client = httpx.Client(
            base_url=target.base_url, headers=headers, timeout=REQUEST_TIMEOUT, transport=transport
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- errors

    def unreachable(self, error: Exception) -> CliError:
        return CliError(
            f"cannot reach {self.target.base_url}: {type(error).__name__}: {error}".rstrip(": "),
            ExitCode.UNREACHABLE,
            hint=self.target.unreachable_hint,
        )

    def failure(self, response: httpx.Response, what: str) -> CliError:
        body = body_of(response)
        message = error_message(body, response.reason_phrase or "error")
        code = exit_code_for(response.status_code)
        hint = None
        if code is ExitCode.AUTH and not self.target.api_key and "Authorization" not in response.request.headers:
            hint = "no API key: set TURNSTOP_API_KEY or pass --api-key (`make run` prints the dev key)"
        elif code is ExitCode.AUTH and response.status_code == 401:
            hint = "the key is unknown to this API (keys of a local instance are gone once it stops)"
        return CliError(
            f"{what}: HTTP {response.status_code}: {message}", code, status=response.status_code, body=body, hint=hint
        )

    # -------------------------------------------------------------------------- requests

    def request(
        self, method: str, path: str, *, what: str, allow: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        """Send one request; any status >= 400 not in ``allow`` raises its CliError."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise self.unreachable(error) from error
        if response.status_code >= 400 and response.status_code not in allow:
            raise self.failure(response, what)
        return response

    def json(self, method: str, path: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        return self.answer(self.request(method, path, what=what, **kwargs), what)

    def answer(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """A successful answer's JSON object (anything else is an API error, never a traceback)."""
        body = body_of(response)
        if not isinstance(body, dict):
            raise CliError(
                f"{what}: the API answered {response.status_code} without a JSON object", ExitCode.API_ERROR, body=body
            )
        return body

    def chat_headers(self) -> dict[str, str]:
        """The chat dialect signs in with a browser session, not a key (docs/chat.md)."""
        if not self.chat_session:
            from turnstop_cli.errors import usage

            raise usage(
                "the chat dialect needs a signed-in session: pass --chat-session (or TURNSTOP_CHAT_SESSION)",
                hint='the session_id cookie of a sign-in: curl -sL -c cookies.txt "$API/auth/login?login_hint=alice"',
            )
        return {"Cookie": f"session_id={self.chat_session}", "Content-Type": "application/json"}

    @contextmanager
    def sse(
        self,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout = STREAM_TIMEOUT,
    ) -> Iterator[EventSource]:
        """An SSE stream; an error answer raises its CliError (transport errors propagate,
        so that the caller can reconnect)."""
        with connect_sse(
            self.client, "GET", path, params=dict(params or {}), headers=dict(headers or {}), timeout=timeout
        ) as source:
            response = source.response
            if response.status_code >= 400:
                response.read()
                raise self.failure(response, what)
            content_type = response.headers.get("content-type", "")
            if content_type.partition(";")[0].strip().lower() != "text/event-stream":
                # httpx_sse would raise SSEError, a TransportError: this is an answer, not a lost connection
                response.read()
                raise CliError(
                    f"{what}: the API answered {response.status_code} with {content_type or 'no content type'}, "
                    "not an event stream (text/event-stream)",
                    ExitCode.API_ERROR,
                    status=response.status_code,
                    body=body_of(response),
                    hint="is --base-url the API itself (a deployed stack's BaseUrl output), not a page in front of it?",
                )
            yield source


def parse_data(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data
