"""``openai-responses``: OpenAI's Responses API in background mode, through the official SDK.

``responses.create(model, instructions, input=[history + the new input as message items],
max_output_tokens, background=True, stream=True, store=True)``. The response's id comes with
``response.created``; text from ``response.output_text.delta``; thinking from
``response.reasoning_summary_text.delta`` / ``response.reasoning_text.delta`` (a summary is
asked for when the request's sampling has ``reasoning_effort``); the usage from
``response.completed`` / ``response.incomplete``; the finish reason ``stop``, or ``length`` for
a response incomplete at ``max_output_tokens``. A background response goes on generating when
its stream drops, so a stream that drops before the end is resumed once with
``responses.retrieve(id, stream=True, starting_after=<last sequence_number>)``; if that fails
too, the orphaned response is cancelled (so it stops costing) and the call fails.

**On abort** two things happen. The call's connection is shut (``AbortableTransport``, every
phase), and — because a background response keeps generating, and billing, without a reader —
``POST /responses/{id}/cancel`` is sent on a daemon thread over a fresh transport with short
timeouts (best effort, logged without the key). When the cancel's answer carries usage it
becomes the call's ``usage`` (the provider's own count of what the cancelled response cost);
``settled`` is set once the cancel has been answered or has failed. An abort that comes after
the request was sent but before ``response.created`` named the id keeps the connection up to
``ID_GRACE_S`` more, so the id arrives and the cancel can be sent; then it is shut regardless.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from turnstop.providers.base import CallAborted, Chunk, ModelRequest, UpstreamError, UpstreamErrorKind
from turnstop.providers.calls import StreamingCall, usage_from
from turnstop.providers.config import Route
from turnstop.providers.openai_chat import openai_error, output_cap, sampling_for, sdk_client

if TYPE_CHECKING:
    from turnstop.providers.transport import AbortableTransport

log = logging.getLogger(__name__)

ID_GRACE_S = 1.0  # how long an abort waits for a just-created response's id before shutting the stream
CANCEL_CONNECT_S = 3.0
CANCEL_TIMEOUT_S = 10.0
THINKING_EVENTS = ("response.reasoning_summary_text.delta", "response.reasoning_text.delta")


def _usage(response: Any) -> Any:
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    return usage_from(
        usage.input_tokens,
        usage.output_tokens,
        getattr(usage.input_tokens_details, "cached_tokens", None),
        getattr(usage.output_tokens_details, "reasoning_tokens", None),
    )


class _Dropped(Exception):
    """The stream ended or broke before the response's terminal event."""


class OpenAIResponsesCall(StreamingCall):
    provider = "openai-responses"

    def __init__(self, route: Route, api_key: str | None, request: ModelRequest) -> None:
        super().__init__(route)
        self._api_key = api_key
        self.request = request
        self.response_id: str | None = None
        # Set once ``usage`` will not change any more: the call ended and any server-side cancel
        # was answered (or failed). A runner that wants a cancelled call's cost waits on it briefly.
        self.settled = threading.Event()
        self._last_seq: int | None = None
        self._done = False
        self._cancel_lock = threading.Lock()
        self._cancelled: set[str] = set()  # every response a cancel was sent for (one per attempt at most)

    def body(self) -> dict[str, Any]:
        request = self.request
        items = [{"role": m.role, "content": m.content} for m in request.history]
        items.append({"role": "user", "content": request.input})
        body: dict[str, Any] = {
            "model": self.route.model,
            "input": items,
            "max_output_tokens": output_cap(request, self.route),
            "background": True,
            "stream": True,
            "store": True,
            **sampling_for(request, ("temperature", "top_p")),
        }
        if request.instructions:
            body["instructions"] = request.instructions
        effort = request.sampling.get("reasoning_effort")
        if effort:
            body["reasoning"] = {"effort": effort, "summary": "auto"}
        return body

    # -- the stream ------------------------------------------------------------------------------
    def _attempt(self, transport: AbortableTransport) -> Generator[Chunk, None, None]:
        sdk = sdk_client(self.route, self._api_key, transport)
        self.response_id, self._last_seq, self._done = None, None, False
        self.settled.clear()  # this attempt's response decides; an earlier one's cancel no longer does
        try:
            yield from self._stream(sdk, transport)
        except BaseException:
            if self.response_id is not None and not self._done and not self.aborted:
                self._start_cancel()  # failed or abandoned: the background response must not go on costing
            elif not self.aborted:
                self.settled.set()
            raise
        self.settled.set()

    def _stream(self, sdk: Any, transport: AbortableTransport) -> Generator[Chunk, None, None]:
        try:
            yield from self._follow(sdk.responses.create(**self.body()))
            return
        except _Dropped:
            if self.response_id is None:
                raise self._bad_response("the stream ended before the response was created") from None
        except Exception:
            if self.response_id is None or self.aborted or transport.timed_out or self._done:
                raise
        log.info(
            "%s: the stream of %s dropped; resuming after event %s", self.provider, self.response_id, self._last_seq
        )
        self._restart_wait()
        try:
            yield from self._follow(
                sdk.responses.retrieve(self.response_id, stream=True, starting_after=self._last_seq or 0)
            )
        except _Dropped:
            raise self._bad_response("the stream ended before the response finished, twice") from None

    def _follow(self, stream: Any) -> Generator[Chunk, None, None]:
        with stream:
            for event in stream:
                self._alive()
                kind = getattr(event, "type", None)
                seq = getattr(event, "sequence_number", None)
                if isinstance(seq, int):
                    self._last_seq = seq
                if kind == "response.created":
                    self.response_id = event.response.id
                    if self.aborted:  # the abort waited for this id (ID_GRACE_S)
                        self._shut()
                        raise CallAborted()
                elif kind == "response.output_text.delta":
                    if event.delta:
                        yield Chunk(event.delta)
                elif kind in THINKING_EVENTS:
                    if event.delta:
                        yield Chunk(event.delta, "thinking")
                elif kind in ("response.completed", "response.incomplete"):
                    self._finish(event.response)
                    return
                elif kind in ("response.failed", "error"):
                    self._done = True
                    self.usage = _usage(getattr(event, "response", None)) or self.usage
                    raise UpstreamError(
                        UpstreamErrorKind.SERVER, f"{self.provider}: the upstream reported the response failed"
                    )
                elif (
                    kind == "response.cancelled"
                    or getattr(getattr(event, "response", None), "status", None) == "cancelled"
                ):
                    self._done = True
                    raise self._bad_response("the response was cancelled upstream")
        raise _Dropped()

    def _finish(self, response: Any) -> None:
        self._done = True
        self.usage = _usage(response) or self.usage
        if getattr(response, "status", None) == "incomplete":
            reason = getattr(getattr(response, "incomplete_details", None), "reason", None)
            self.finish_reason = "length" if reason in (None, "max_output_tokens") else str(reason)
        else:
            self.finish_reason = "stop"

    def _classify(self, exc: BaseException) -> UpstreamError | None:
        return openai_error(self.provider, exc)

    # -- abort and the server-side cancel ---------------------------------------------------------
    def abort(self) -> None:
        transport = self._transport
        if self.response_id is None and not self.aborted and transport is not None and transport.connected:
            # The create may have reached the server: let its id arrive (the iterating thread
            # then cancels and shuts), but never wait longer than ID_GRACE_S.
            self._aborted.set()
            timer = threading.Timer(ID_GRACE_S, self._shut)
            timer.daemon = True
            timer.start()
            return
        super().abort()

    def _on_abort(self) -> None:
        if self._done:
            self.settled.set()
        else:
            self._start_cancel()

    def _start_cancel(self) -> None:
        with self._cancel_lock:
            if self.response_id is None or self.response_id in self._cancelled:
                if self.response_id is None:
                    self.settled.set()
                return
            self._cancelled.add(self.response_id)
        threading.Thread(target=self._cancel, args=(self.response_id,), name="responses-cancel", daemon=True).start()

    def _cancel(self, response_id: str) -> None:
        from turnstop.providers.transport import AbortableTransport, client

        deadline = time.monotonic() + CANCEL_TIMEOUT_S
        transport = AbortableTransport(read_deadline=lambda: deadline)
        try:
            import openai

            http = client(transport, connect_timeout_s=CANCEL_CONNECT_S, timeout_s=CANCEL_TIMEOUT_S)
            sdk = openai.OpenAI(
                base_url=self.route.base_url,
                api_key=self._api_key or "none",
                organization=None,
                project=None,
                max_retries=1,
                http_client=http,
            )
            response = sdk.responses.cancel(response_id)
            usage = _usage(response)
            if usage is not None and response_id == self.response_id:  # not an earlier attempt's
                self.usage = usage
            log.info("%s: cancelled %s upstream", self.provider, response_id)
        except Exception as e:  # best effort; never the key or the body
            status = getattr(e, "status_code", None)
            log.warning(
                "%s: the cancel of %s failed (%s%s)",
                self.provider,
                response_id,
                type(e).__name__,
                f" {status}" if status else "",
            )
        finally:
            with contextlib.suppress(Exception):
                transport.close()
            if response_id == self.response_id:
                self.settled.set()


class OpenAIResponsesProvider:
    """``openai-responses`` routes (``base_url`` defaults to OpenAI's). The key is the
    composition root's to resolve; it is never logged nor put in an error."""

    def __init__(self, route: Route, api_key: str | None) -> None:
        self.route = route
        self._api_key = api_key

    def open(self, request: ModelRequest) -> OpenAIResponsesCall:
        return OpenAIResponsesCall(self.route, self._api_key, request)

    def __repr__(self) -> str:
        return f"OpenAIResponsesProvider({self.route!r})"
