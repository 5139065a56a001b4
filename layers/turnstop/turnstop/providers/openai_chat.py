"""``openai-chat``: any OpenAI-compatible Chat Completions server, through the official SDK.

``POST {base_url}/chat/completions`` with ``stream: true`` and ``stream_options.include_usage``
(OpenAI, vLLM, llama.cpp's server, Ollama, LM Studio, TGI, LiteLLM, OpenRouter). Text comes from
``delta.content``; thinking from ``delta.reasoning_content`` (vLLM, llama.cpp, DeepSeek) or
``delta.reasoning``; the usage from the final usage chunk.

The output cap is ``min(request.max_output_tokens, route.max_output_tokens)``, sent as
``max_completion_tokens`` to OpenAI itself (its reasoning models refuse ``max_tokens``) and as
``max_tokens`` to every other server (the field they all know).

**On abort** the SDK's HTTP client runs on the call's own ``AbortableTransport``: the abort shuts
that connection's socket (``shutdown(SHUT_RDWR)``), whatever the phase (connecting, waiting for
headers during a long prefill, waiting for the first byte, mid-stream). The server sees the
disconnect and stops decoding (vLLM and llama.cpp's server abort the request on it); there is no
cancel API to call. Nothing is retried after the first chunk. ``openai`` is imported on the first
call, not at cold start.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from turnstop.providers.base import Chunk, ModelRequest, UpstreamError, UpstreamErrorKind
from turnstop.providers.calls import StreamingCall, parse_retry_after, status_error, usage_from
from turnstop.providers.config import Route

if TYPE_CHECKING:
    from turnstop.providers.transport import AbortableTransport

# The request's sampling fields this provider passes through (others are ignored).
SAMPLING = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", "stop")


def output_cap(request: ModelRequest, route: Route) -> int:
    """The caller's cap, never above the route's."""
    asked = request.max_output_tokens
    return min(asked, route.max_output_tokens) if asked and asked > 0 else route.max_output_tokens


def messages_for(request: ModelRequest) -> list[dict[str, str]]:
    """System instructions, the conversation so far in order, then the new input."""
    messages = [{"role": "system", "content": request.instructions}] if request.instructions else []
    messages += [{"role": m.role, "content": m.content} for m in request.history]
    messages.append({"role": "user", "content": request.input})
    return messages


def sampling_for(request: ModelRequest, names: tuple[str, ...] = SAMPLING) -> dict[str, Any]:
    return {name: request.sampling[name] for name in names if request.sampling.get(name) is not None}


def openai_error(provider: str, exc: BaseException) -> UpstreamError | None:
    """An ``openai`` SDK exception as an ``UpstreamError`` (None: the transport knows better)."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        headers = exc.response.headers
        retry_after = parse_retry_after(headers.get("retry-after"))
        if retry_after is None and headers.get("retry-after-ms"):
            millis = parse_retry_after(headers.get("retry-after-ms"))
            retry_after = None if millis is None else millis / 1000
        return status_error(provider, exc.status_code, retry_after=retry_after)
    if isinstance(exc, openai.APIResponseValidationError):
        return UpstreamError(UpstreamErrorKind.BAD_RESPONSE, f"{provider}: the upstream's answer could not be read")
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return None
    if isinstance(exc, openai.APIError):  # an error event in the stream
        return UpstreamError(UpstreamErrorKind.SERVER, f"{provider}: the upstream reported an error in the stream")
    return None


def sdk_client(route: Route, api_key: str | None, transport: AbortableTransport, **options: Any) -> Any:
    """An ``openai.OpenAI`` client for one attempt: no SDK retries, on ``transport``."""
    import openai

    from turnstop.providers.transport import client

    return openai.OpenAI(
        base_url=route.base_url,
        api_key=api_key or "none",
        organization=None,
        project=None,
        max_retries=0,
        http_client=client(transport, connect_timeout_s=route.connect_timeout_s),
        **options,
    )


class OpenAIChatCall(StreamingCall):
    provider = "openai-chat"

    def __init__(self, route: Route, api_key: str | None, request: ModelRequest) -> None:
        super().__init__(route)
        self._api_key = api_key
        self.request = request

    def body(self) -> dict[str, Any]:
        """The Chat Completions request (without the transport's parts)."""
        route = self.route
        host = urlsplit(route.base_url or "").hostname or ""
        cap_field = "max_completion_tokens" if host == "api.openai.com" else "max_tokens"
        return {
            "model": route.model,
            "messages": messages_for(self.request),
            "stream": True,
            "stream_options": {"include_usage": True},
            cap_field: output_cap(self.request, route),
            **sampling_for(self.request),
        }

    def _attempt(self, transport: AbortableTransport) -> Generator[Chunk, None, None]:
        sdk = sdk_client(self.route, self._api_key, transport)
        stream = sdk.chat.completions.create(**self.body())
        with stream:
            for event in stream:
                self._alive()
                usage = getattr(event, "usage", None)
                if usage is not None:
                    self.usage = usage_from(
                        usage.prompt_tokens,
                        usage.completion_tokens,
                        getattr(usage.prompt_tokens_details, "cached_tokens", None),
                        getattr(usage.completion_tokens_details, "reasoning_tokens", None),
                    )
                for choice in event.choices or ():
                    delta = choice.delta
                    if delta is not None:
                        thinking = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
                        if isinstance(thinking, str) and thinking:
                            yield Chunk(thinking, "thinking")
                        if delta.content:
                            yield Chunk(delta.content)
                    if choice.finish_reason:
                        self.finish_reason = choice.finish_reason
        if self.finish_reason is None:
            raise self._bad_response("the stream ended before the model finished")

    def _classify(self, exc: BaseException) -> UpstreamError | None:
        return openai_error(self.provider, exc)


class OpenAIChatProvider:
    """``openai-chat`` routes. The key (a Bearer token; None for keyless local servers) is the
    composition root's to resolve; it is never logged nor put in an error."""

    def __init__(self, route: Route, api_key: str | None) -> None:
        if not route.base_url:
            raise ValueError(f"route {route.name!r}: openai-chat needs a base_url")
        self.route = route
        self._api_key = api_key

    def open(self, request: ModelRequest) -> OpenAIChatCall:
        return OpenAIChatCall(self.route, self._api_key, request)

    def __repr__(self) -> str:
        return f"OpenAIChatProvider({self.route!r})"
