"""OpenAI's Responses API: ``POST /v1/responses``, ``GET /v1/responses/{id}`` (with
``stream=true&starting_after=N`` to resume) and ``POST /v1/responses/{id}/cancel``.

Streams are SSE with ``event: <type>`` and ``data: <event JSON>`` (see ``responses_state`` for
the events), ending after the terminal event, without ``[DONE]``. ``background: true`` without
``stream`` answers the ``queued`` response at once; without ``background`` a request waits for
its response (streamed or whole) and leaving stops it. A cancel answers the response with
``status: "cancelled"`` and stops its generation; it records ``cancelled_at`` on the cancel
request's record and on the create request's. Cancelling a finished response is a 400, an
unknown id a 404, both in OpenAI's error JSON.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from turnstop_local.fake_upstream import openai_wire as wire
from turnstop_local.fake_upstream.behaviour import count_words, plan_for
from turnstop_local.fake_upstream.exchange import Exchange
from turnstop_local.fake_upstream.responses_state import TERMINAL_EVENTS, FakeResponse

if TYPE_CHECKING:
    from turnstop_local.fake_upstream.server import FakeUpstream

TOKEN_EVENTS = ("response.output_text.delta", "response.reasoning_summary_text.delta")


class ResponseStore:
    """The server's responses by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._responses: dict[str, FakeResponse] = {}

    def add(self, response: FakeResponse) -> None:
        with self._lock:
            self._responses[response.id] = response

    def get(self, response_id: str) -> FakeResponse | None:
        with self._lock:
            return self._responses.get(response_id)

    def stop(self) -> None:
        with self._lock:
            responses = list(self._responses.values())
        for response in responses:
            with response.cond:
                response.cond.notify_all()
            response.wake()


def input_tokens(body: dict[str, Any]) -> int:
    texts = wire.text_of(body.get("instructions"))
    given = body.get("input")
    for item in [given] if isinstance(given, str) else given if isinstance(given, list) else []:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            texts.extend(wire.text_of(item.get("content")))
    return count_words(texts)


def handle_create(server: FakeUpstream, exchange: Exchange, match: re.Match[str], query: dict[str, list[str]]) -> None:
    record, body = exchange.record, exchange.record.body
    record.update(protocol="openai-responses")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        exchange.answer_json(
            400, wire.error_body(400, "We could not parse the JSON body of your request."), [wire.request_id()]
        )
        return
    model = body["model"]
    record.update(model=model)
    behaviour = server.behaviour_for(model)
    if behaviour is None:
        exchange.answer_json(
            404, wire.error_body(404, f"The model '{model}' does not exist.", param="model"), [wire.request_id()]
        )
        return
    behaviour, failure = behaviour.for_attempt(server.next_attempt(model))
    if behaviour.prefill_s and not exchange.wait(behaviour.prefill_s):
        return
    stream = bool(body.get("stream"))
    if wire.refused(exchange, failure, behaviour, stream):
        return
    max_tokens = body.get("max_output_tokens") if isinstance(body.get("max_output_tokens"), int) else None
    plan = plan_for(behaviour, input_tokens(body), max_tokens)
    response = FakeResponse(body, behaviour, plan, failure, record, server.stopping)
    server.responses.add(response)
    record.update(response_id=response.id)
    created = response.snapshot()
    response.start()
    if stream:
        _serve_stream(exchange, response, after=-1, creator=True)
    elif response.background:
        exchange.answer_json(200, created, [wire.request_id()])
    else:
        _serve_whole(exchange, response)


def _lookup(server: FakeUpstream, exchange: Exchange, match: re.Match[str]) -> FakeResponse | None:
    exchange.record.update(protocol="openai-responses", response_id=match["id"])
    response = server.responses.get(match["id"])
    if response is None:
        message = f"Response with id '{match['id']}' not found."
        exchange.answer_json(404, wire.error_body(404, message, code="not_found"), [wire.request_id()])
        return None
    exchange.record.update(model=response.model)
    return response


def handle_retrieve(
    server: FakeUpstream, exchange: Exchange, match: re.Match[str], query: dict[str, list[str]]
) -> None:
    response = _lookup(server, exchange, match)
    if response is None:
        return
    if (query.get("stream") or [""])[0].lower() == "true":
        after = (query.get("starting_after") or ["-1"])[0]
        _serve_stream(exchange, response, after=int(after) if after.lstrip("-").isdigit() else -1, creator=False)
    else:
        exchange.answer_json(200, response.snapshot(), [wire.request_id()])


def handle_cancel(server: FakeUpstream, exchange: Exchange, match: re.Match[str], query: dict[str, list[str]]) -> None:
    response = _lookup(server, exchange, match)
    if response is None:
        return
    if not response.background:
        message = "Only responses created with background=true can be cancelled."
        exchange.answer_json(400, wire.error_body(400, message), [wire.request_id()])
        return
    if not response.cancel():
        message = f"Cannot cancel a response with status '{response.status}'."
        exchange.answer_json(400, wire.error_body(400, message), [wire.request_id()])
        return
    now = time.monotonic()
    if response.record.cancelled_at is None:
        response.record.update(cancelled_at=now)
    exchange.record.update(cancelled_at=response.record.cancelled_at)
    exchange.answer_json(200, response.snapshot(), [wire.request_id()])


class _Reader:
    """A connection following a response: woken through a socket pair on every new event."""

    def __init__(self, response: FakeResponse) -> None:
        self.response = response
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_w.setblocking(False)

    def __enter__(self) -> _Reader:
        with self.response.cond:
            self.response.wakers.append(self.poke)
        return self

    def __exit__(self, *exc: object) -> None:
        with self.response.cond:
            self.response.wakers.remove(self.poke)
        self.wake_r.close()
        self.wake_w.close()

    def poke(self) -> None:
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass  # full: a wake-up is pending anyway


def _serve_stream(exchange: Exchange, response: FakeResponse, *, after: int, creator: bool) -> None:
    record = exchange.record
    with _Reader(response) as reader:
        if not exchange.send_headers(200, [*wire.SSE_HEADERS, wire.request_id()], chunked=True):
            _left(response, creator)
            return
        next_seq = after + 1
        while True:
            with response.cond:
                drop_at = response.drop_creator_at if creator else None
                pending = response.events[next_seq:drop_at]
                cancelled = response.status == "cancelled"
            for event in pending:
                if not exchange.write(wire.sse(event, event=event["type"])):
                    _left(response, creator)
                    return
                next_seq += 1
                if event["type"] in TOKEN_EVENTS:
                    record.token_sent()
                if event["type"] in TERMINAL_EVENTS:
                    exchange.end(event["type"].removeprefix("response."))
                    return
            if drop_at is not None and next_seq >= drop_at:
                exchange.close_abruptly()
                _left(response, creator)
                return
            if cancelled and not pending:
                exchange.end("cancelled")
                return
            if not exchange.wait_or_wake(reader.wake_r, 0.05):
                _left(response, creator)
                return


def _left(response: FakeResponse, creator: bool) -> None:
    """A reader left: a response that is not in the background stops with it."""
    if creator and not response.background:
        response.cancel()


def _serve_whole(exchange: Exchange, response: FakeResponse) -> None:
    with _Reader(response) as reader:
        while not response.finished:
            if not exchange.wait_or_wake(reader.wake_r, 0.05):
                response.cancel()
                return
    exchange.answer_json(200, response.snapshot(), [wire.request_id()])
