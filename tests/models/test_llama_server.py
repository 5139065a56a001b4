"""Facts about the real inference server itself, over raw HTTP (no turnstop involved): what it
streams, and that a client leaving makes it stop decoding, mid-stream and during a long prefill.

These are what a turnstop cancel relies on: closing the upstream connection is the whole stop
signal an OpenAI-compatible server gets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from tests.models.conftest import (
    BATCH,
    QUIET_POLL_S,
    Llama,
    Prefill,
    RawStream,
    chat_body,
    delta_text,
    long_prompt,
    poll,
    sse_chunks,
)

# A generation that would run for minutes: the model may not stop by itself (ignore_eos).
ENDLESS = {"ignore_eos": True, "cache_prompt": False}


def test_a_streamed_chat_completion_returns_real_text_and_usage(llama: Llama) -> None:
    with llama.client.stream(
        "POST", "/v1/chat/completions", json=chat_body("Name three colours of the rainbow.", max_tokens=24)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = list(sse_chunks(response))
    text = "".join(delta_text(chunk) for chunk in chunks)
    assert text.strip(), chunks
    finish = [c["finish_reason"] for chunk in chunks for c in chunk.get("choices") or [] if c.get("finish_reason")]
    assert finish in (["stop"], ["length"])
    usage = chunks[-1]["usage"]  # stream_options.include_usage: a last chunk with usage and no choices
    assert chunks[-1]["choices"] == []
    assert usage["prompt_tokens"] > 5
    assert 0 < usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert chunks[0]["model"] == "smollm2"


def test_b_closing_the_connection_mid_stream_stops_decoding(llama: Llama, measurements: dict[str, Any]) -> None:
    """Two endless generations fill both slots; the client of one leaves after a few tokens. The
    server stops decoding it at once (its slot frees, its token count stops), and a third request
    is served while the other generation still runs: it could only have had the freed slot."""
    llama.wait_idle(every=QUIET_POLL_S)
    before = llama.metrics()
    with httpx_stream(llama, chat_body("Tell a story about a lighthouse.", max_tokens=4000, **ENDLESS)) as other:
        other_chunks = sse_chunks(other)
        assert first_text(other_chunks)  # the other generation runs
        with httpx_stream(llama, chat_body("Tell a story about a dragon.", max_tokens=4000, **ENDLESS)) as leaving:
            read = 0
            for chunk in sse_chunks(leaving):
                read += bool(delta_text(chunk))
                if read == 8:
                    break
            assert sorted(llama.busy_slots()) == [0, 1]
        left = time.monotonic()  # the response is closed, and with it its connection
        freed = poll(lambda: len(llama.busy_slots()) == 1, "the leaving request's slot to free", every=0.05)
        # llama.cpp adds a request's decoded tokens to this counter when its slot is released: the
        # leaving request decoded the 8 tokens read and the few already on their way, not 4,000.
        decoded = llama.metrics()["tokens_predicted_total"] - before["tokens_predicted_total"]
        measurements["slot freed after a mid-stream disconnect"] = (
            f"within {freed - left:.2f} s; {int(decoded)} tokens decoded for 8 read"
        )
        assert 8 <= decoded < 200, decoded

        # a third request gets the freed slot and streams while the other still runs
        asked = time.monotonic()
        with httpx_stream(llama, chat_body("Tell a story about a cat.", max_tokens=4000, **ENDLESS)) as third:
            assert first_text(sse_chunks(third))
            measurements["first token of the request after it"] = f"{time.monotonic() - asked:.2f} s"
            assert sorted(llama.busy_slots()) == [0, 1], "the other generation stopped: the test proves nothing"
        assert first_text(other_chunks)  # still generating
    llama.wait_idle(every=QUIET_POLL_S)


def test_c_leaving_during_a_long_prefill_frees_the_server_before_the_prefill_ends(
    llama: Llama, full_prefill: Prefill, measurements: dict[str, Any]
) -> None:
    """A client sends a ~2,500-token prompt and leaves before any byte of the answer. The server
    stops the prefill part-way: its slot frees after fewer decode steps (one per batch of 256
    prompt tokens) and fewer prompt tokens than the full prompt needs, and no token is decoded.
    The full prefill is measured once on the same server, for comparison."""
    assert 2200 <= full_prefill.prompt_tokens <= 2900, full_prefill
    assert full_prefill.decode_steps >= full_prefill.prompt_tokens // BATCH
    llama.wait_idle(every=QUIET_POLL_S)
    before = llama.metrics()
    request = RawStream(llama.port, chat_body(long_prompt("leave"), max_tokens=64, cache_prompt=False))
    try:
        llama.wait_busy()
    finally:
        request.close()
    left = time.monotonic()
    freed = llama.wait_idle(every=QUIET_POLL_S)
    after = llama.metrics()
    steps = int(after["n_decode_total"] - before["n_decode_total"])
    prefilled = int(after["prompt_tokens_total"] - before["prompt_tokens_total"])
    measurements["slot freed after a disconnect during prefill"] = (
        f"within {freed - left:.1f} s (polled every {QUIET_POLL_S:.0f} s), after {prefilled} of "
        f"{full_prefill.prompt_tokens} prompt tokens ({steps} of {full_prefill.decode_steps} decode steps); "
        f"a full prefill took {full_prefill.seconds:.1f} s"
    )
    assert after["tokens_predicted_total"] == before["tokens_predicted_total"], "a token was decoded"
    assert 1 <= steps < full_prefill.decode_steps, (steps, full_prefill)
    assert 0 < prefilled < full_prefill.prompt_tokens, (prefilled, full_prefill)

    # and the server serves the next request
    response = llama.client.post("/v1/chat/completions", json=chat_body("Say hello.", max_tokens=8, stream=False))
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"].strip()


# ----------------------------------------------------------------------------- helpers


def httpx_stream(llama: Llama, body: dict[str, Any]) -> Any:
    return llama.client.stream("POST", "/v1/chat/completions", json=body)


def first_text(chunks: Iterator[dict[str, Any]]) -> str:
    """The text of the next chunk that has some."""
    return next(text for text in map(delta_text, chunks) if text)
