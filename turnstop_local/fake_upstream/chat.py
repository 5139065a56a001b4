"""``POST /v1/chat/completions`` as OpenAI (and vLLM, llama.cpp's server, Ollama...) answers it.

Streaming (``stream: true``): ``text/event-stream`` with one ``data: {chat.completion.chunk}``
per token, the first chunk carrying ``delta.role`` (sent with the headers, as vLLM does),
thinking tokens as ``delta.reasoning_content`` (vLLM, llama.cpp, DeepSeek), a last chunk with
an empty delta and ``finish_reason`` (``stop``, or ``length`` when ``max_completion_tokens`` /
``max_tokens`` cut the answer), then with ``stream_options.include_usage`` a usage chunk with
``choices: []`` (every earlier chunk then has ``"usage": null``), then ``data: [DONE]``. An
in-stream failure is a ``data: {"error": {...}}`` event and the end of the stream, without
``[DONE]``. Without ``stream`` the answer is one ``chat.completion`` object.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from turnstop_local.fake_upstream import openai_wire as wire
from turnstop_local.fake_upstream.behaviour import Behaviour, Fail, Plan, count_words, plan_for
from turnstop_local.fake_upstream.exchange import Exchange

if TYPE_CHECKING:
    from turnstop_local.fake_upstream.server import FakeUpstream

FINGERPRINT = "fp_fake_upstream"


def usage(plan: Plan) -> dict[str, Any]:
    return {
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.input_tokens + plan.output_tokens,
        "prompt_tokens_details": {"cached_tokens": plan.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": len(plan.thinking),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def input_tokens(body: dict[str, Any]) -> int:
    texts: list[str] = []
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            texts.extend(wire.text_of(message.get("content")))
    return count_words(texts)


def max_tokens(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return value if isinstance(value, int) else None


def handle(server: FakeUpstream, exchange: Exchange, match: re.Match[str], query: dict[str, list[str]]) -> None:
    body = exchange.record.body
    exchange.record.update(protocol="openai-chat")
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("model"), str)
        or not isinstance(body.get("messages"), list)
    ):
        exchange.answer_json(
            400, wire.error_body(400, "We could not parse the JSON body of your request."), [wire.request_id()]
        )
        return
    model = body["model"]
    exchange.record.update(model=model)
    behaviour = server.behaviour_for(model)
    if behaviour is None:
        exchange.answer_json(
            404,
            wire.error_body(404, f"The model `{model}` does not exist or you do not have access to it.", param="model"),
            [wire.request_id()],
        )
        return
    behaviour, failure = behaviour.for_attempt(server.next_attempt(model))
    plan = plan_for(behaviour, input_tokens(body), max_tokens(body))
    if not exchange.prefill(behaviour, plan.output_tokens):
        return
    stream = bool(body.get("stream"))
    if wire.refused(exchange, failure, behaviour, stream):
        return
    if stream:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        _stream(exchange, behaviour, plan, model, include_usage, failure or Fail())
    else:
        _whole(exchange, behaviour, plan, model, failure or Fail())


def _stream(
    exchange: Exchange, behaviour: Behaviour, plan: Plan, model: str, include_usage: bool, failure: Fail
) -> None:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": FINGERPRINT,
    }
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return wire.sse({**base, "choices": [choice]})

    def emit(index: int, kind: str, piece: str) -> bytes:
        return chunk({"reasoning_content": piece} if kind == "thinking" else {"content": piece})

    if not exchange.send_headers(200, [*wire.SSE_HEADERS, wire.request_id()], chunked=True):
        return
    if not exchange.write(chunk({"role": "assistant", "content": "", "refusal": None})):
        return
    result = exchange.stream_tokens(behaviour, plan, emit)
    if result == "fail":
        exchange.end("failed", wire.sse(wire.error_body(failure.status, failure.message, failure.code)))
        return
    if result != "done":
        return
    finish_reason = "length" if plan.truncated else "stop"
    tail = chunk({}, finish_reason)
    if include_usage:
        tail += wire.sse({**base, "choices": [], "usage": usage(plan)})
    exchange.end("length" if plan.truncated else "completed", tail + wire.sse("[DONE]"))


def _whole(exchange: Exchange, behaviour: Behaviour, plan: Plan, model: str, failure: Fail) -> None:
    """The non-streaming answer: silent while the tokens are generated, then one object."""
    result = exchange.generate_silently(behaviour, plan)
    if result == "fail":
        wire.fail(exchange, failure)
        return
    if result != "done":
        return
    message: dict[str, Any] = {"role": "assistant", "content": "".join(plan.text), "refusal": None, "annotations": []}
    if plan.thinking:
        message["reasoning_content"] = "".join(plan.thinking)
    finish_reason = "length" if plan.truncated else "stop"
    completion = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage(plan),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    exchange.answer_json(200, completion, [wire.request_id()])
    exchange.record.update(tokens_sent=plan.output_tokens, first_token_at=exchange.record.headers_sent_at)
    if exchange.record.finished_at is not None:
        exchange.record.update(outcome="length" if plan.truncated else "completed")
