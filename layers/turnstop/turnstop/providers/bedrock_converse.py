"""``bedrock-converse``: Amazon Bedrock's ``ConverseStream`` through boto3 (IAM, no keys).

One ``bedrock-runtime`` client per provider (region and endpoint from the route; botocore's own
retries off, since retries are the call's: only before the first chunk, within the route's
budget). ``maxTokens`` is always sent, never above the route's ``max_output_tokens``. Text comes
from ``contentBlockDelta.delta.text``, thinking from ``delta.reasoningContent.text``, the finish
reason from ``messageStop.stopReason`` (in OpenAI's words: ``end_turn`` / ``stop_sequence`` →
``stop``, ``max_tokens`` → ``length``, ``tool_use`` → ``tool_calls``, ``content_filtered`` /
``guardrail_intervened`` → ``content_filter``), the usage from ``metadata.usage`` (its input
tokens with the prompt cache's reads and writes added, as OpenAI counts them).

**On abort.** botocore sends through urllib3, whose socket cannot be shut from another thread
before the response headers arrive. So the request is not sent by botocore: a handler on the
client's ``before-send`` event (botocore's ``Endpoint._do_get_response`` takes the first
non-None answer of that event as the HTTP response and skips its own ``_send``) sends the
already-signed request through the call's ``AbortableTransport`` (httpx2, streaming) and returns
a ``botocore.awsrequest.AWSResponse`` whose ``raw`` offers what botocore reads: ``stream()`` (the
event-stream bytes, or an error body through ``AWSResponse.content``) and ``close()``. The
handler finds the call's transport in a thread-local set around ``converse_stream`` (the event
fires on the calling thread). An abort then shuts that socket in every phase (connecting,
waiting for headers during a prefill, mid-stream); Bedrock stops the invocation when its client
goes away. Bedrock has no cancel API.

Errors: HTTP 429 / ``ThrottlingException`` → rate limited; 5xx, ``ServiceUnavailable``,
``InternalServer``, ``ModelStreamError`` → server; ``ValidationException``, ``AccessDenied`` and
other 4xx → rejected. The route's ``api_key`` is not used (IAM signs the request).
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

from turnstop.providers.base import Chunk, ModelRequest, ProviderUsage, UpstreamError, UpstreamErrorKind
from turnstop.providers.calls import StreamingCall, parse_retry_after, status_error, usage_from
from turnstop.providers.config import Route
from turnstop.providers.openai_chat import output_cap

if TYPE_CHECKING:
    import httpx2

    from turnstop.providers.transport import AbortableTransport

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}
# Exception names (HTTP ``x-amzn-ErrorType`` or an event-stream exception frame, compared
# lower-case without the ``exception`` suffix) and what they mean.
ERROR_KINDS = {
    "throttling": UpstreamErrorKind.RATE_LIMITED,
    "serviceunavailable": UpstreamErrorKind.SERVER,
    "internalserver": UpstreamErrorKind.SERVER,
    "modelstreamerror": UpstreamErrorKind.SERVER,
    "modelnotready": UpstreamErrorKind.SERVER,
    "modeltimeout": UpstreamErrorKind.TIMEOUT,
    "validation": UpstreamErrorKind.REJECTED,
    "accessdenied": UpstreamErrorKind.REJECTED,
    "resourcenotfound": UpstreamErrorKind.REJECTED,
    "modelerror": UpstreamErrorKind.REJECTED,
}

_current = threading.local()  # .transport and .connect_timeout_s while this thread sends a ConverseStream


class _RawBody:
    """What botocore reads of an ``AWSResponse.raw``: the body's bytes, as they arrive."""

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield from self._response.iter_raw()

    def read(self, amt: int | None = None) -> bytes:
        return b"".join(self.stream())

    def close(self) -> None:
        self._response.close()


def _send_through_call(request: Any, **_: Any) -> Any:
    """botocore's ``before-send``: send a ConverseStream through the current call's transport."""
    transport = getattr(_current, "transport", None)
    if transport is None:
        return None  # not one of ours: botocore sends it
    from botocore.awsrequest import AWSResponse

    from turnstop.providers.transport import client

    http = client(transport, connect_timeout_s=_current.connect_timeout_s)
    body = request.body
    if body is not None and not isinstance(body, bytes | bytearray | str):
        body = body.read()
    headers = [(k, v) for k, v in request.headers.items()]
    response = http.send(http.build_request(request.method, request.url, headers=headers, content=body), stream=True)
    return AWSResponse(request.url, response.status_code, dict(response.headers), _RawBody(response))


def bedrock_usage(usage: dict[str, Any]) -> ProviderUsage:
    """Bedrock's ``inputTokens`` leaves out the tokens read from or written to the prompt cache;
    ``input_tokens`` counts them all (cached ones included, as OpenAI's ``prompt_tokens`` does)."""
    parts = [usage.get(k) for k in ("inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")]
    total = sum(p for p in parts if isinstance(p, int) and not isinstance(p, bool) and p > 0)
    return usage_from(total, usage.get("outputTokens"), usage.get("cacheReadInputTokens"))


def error_kind(code: str | None) -> UpstreamErrorKind | None:
    if not code:
        return None
    name = code.strip().lower().split(":")[0].removesuffix("exception")
    return ERROR_KINDS.get(name)


class BedrockConverseCall(StreamingCall):
    provider = "bedrock-converse"

    def __init__(self, route: Route, sdk: Any, request: ModelRequest) -> None:
        super().__init__(route)
        self._sdk = sdk
        self.request = request

    def body(self) -> dict[str, Any]:
        """The ConverseStream arguments."""
        request = self.request
        inference: dict[str, Any] = {"maxTokens": output_cap(request, self.route)}
        sampling = request.sampling
        for ours, theirs in (("temperature", "temperature"), ("top_p", "topP")):
            if sampling.get(ours) is not None:
                inference[theirs] = sampling[ours]
        stop = sampling.get("stop")
        if stop:
            inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
        messages = [{"role": m.role, "content": [{"text": m.content}]} for m in request.history]
        messages.append({"role": "user", "content": [{"text": request.input}]})
        body: dict[str, Any] = {"modelId": self.route.model, "messages": messages, "inferenceConfig": inference}
        if request.instructions:
            body["system"] = [{"text": request.instructions}]
        return body

    def _attempt(self, transport: AbortableTransport) -> Generator[Chunk, None, None]:
        _current.transport, _current.connect_timeout_s = transport, self.route.connect_timeout_s
        try:
            response = self._sdk.converse_stream(**self.body())
        finally:
            _current.transport = None
        stream = response["stream"]
        try:
            for event in stream:
                self._alive()
                if "contentBlockDelta" in event:
                    delta = event["contentBlockDelta"].get("delta") or {}
                    if delta.get("text"):
                        yield Chunk(delta["text"])
                    thinking = (delta.get("reasoningContent") or {}).get("text")
                    if thinking:
                        yield Chunk(thinking, "thinking")
                elif "messageStop" in event:
                    reason = event["messageStop"].get("stopReason") or "stop"
                    self.finish_reason = STOP_REASONS.get(reason, reason)
                elif "metadata" in event:
                    self.usage = bedrock_usage(event["metadata"].get("usage") or {})
        finally:
            stream.close()
        if self.finish_reason is None:
            raise self._bad_response("the stream ended before the model finished")

    def _classify(self, exc: BaseException) -> UpstreamError | None:
        from botocore.exceptions import ClientError, NoCredentialsError, ParamValidationError, PartialCredentialsError

        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return UpstreamError(UpstreamErrorKind.REJECTED, f"{self.provider}: no AWS credentials to sign the request")
        if isinstance(exc, ParamValidationError):
            return UpstreamError(
                UpstreamErrorKind.REJECTED, f"{self.provider}: the request does not fit ConverseStream"
            )
        if not isinstance(exc, ClientError):
            return None
        error = exc.response.get("Error") or {}
        meta = exc.response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode")
        code = error.get("Code")
        retry_after = parse_retry_after((meta.get("HTTPHeaders") or {}).get("retry-after"))
        kind = error_kind(code)
        in_stream = type(exc).__name__ == "EventStreamError"
        if kind is None:
            if isinstance(status, int) and status >= 300 and not in_stream:
                return status_error(self.provider, status, retry_after=retry_after)
            kind = UpstreamErrorKind.SERVER
        name = str(code or "error").removesuffix("Exception").removesuffix("exception")
        where = "in the stream" if in_stream else f"HTTP {status}"
        return UpstreamError(
            kind,
            f"{self.provider}: the upstream answered {name} ({where}, {kind})",
            status=None if in_stream else status,
            retry_after=retry_after,
        )


class BedrockConverseProvider:
    """``bedrock-converse`` routes: one boto3 client, requests sent through each call's transport."""

    def __init__(self, route: Route, api_key: str | None = None, *, session: Any = None) -> None:
        import boto3
        from botocore.config import Config

        self.route = route
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=route.connect_timeout_s,
            read_timeout=max(route.first_byte_timeout_s, route.idle_timeout_s) + 60,
        )
        self._sdk = (session or boto3).client(
            "bedrock-runtime", region_name=route.region, endpoint_url=route.endpoint_url, config=config
        )
        self._sdk.meta.events.register("before-send.bedrock-runtime.ConverseStream", _send_through_call)

    def open(self, request: ModelRequest) -> BedrockConverseCall:
        return BedrockConverseCall(self.route, self._sdk, request)

    def __repr__(self) -> str:
        return f"BedrockConverseProvider({self.route!r})"
