"""The upstream benchmark: does a cancel reach the model server, and how fast; does the
provider's reader keep up with a fast model.

Turns run in-process as they run in a turn function: the composition root builds the runner
from a ``TURNSTOP_MODELS`` document whose routes point at a loopback fake upstream
(``turnstop_local.fake_upstream``) in this process, the store is the benchmark's local store,
the keeper reads the cancel flag at the shipped cadence (``cancel_check_ms`` 200) and a
session turn's live reader drains the runner's channel. A cancel is the cancel API's write
(``store.turns.request_cancel``): its return is the moment the API would answer 202. Every time
is ``time.monotonic()``, the fake's clock, so the fake's records compare directly:

- **cancel acknowledged → upstream connection closed**: the request's ``disconnected_at`` minus
  the cancel's return, mid-stream (500 tokens/s, cancelled 0.2–0.5 s after the first token) and
  during a silent 10 s prefill (no response headers yet; cancelled 1.0–1.2 s into it).
  What a user meets: the keeper's flag read (up to one cadence), the abort, the FIN.
- **tokens after the acknowledgement**: tokens the upstream wrote after the cancel returned
  (``token_times``); for the Responses API, tokens the background response generated after it.
- **stream time / upstream time**: a 1,000-token answer at 500 tokens/s; from the request
  reaching the upstream to the reader holding the turn's terminal event, over the upstream's
  own time from receiving the request to sending its last byte.

Part of ``make bench``; on its own (``make bench-upstream``, or ``python -m bench.upstream``)
it writes bench/results/upstream.json and upstream.md.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "turnstop"), str(ROOT)]

from bench.streaming import pct  # noqa: E402
from bench.tables import on_a_local_table, run_alone_args, write_alone  # noqa: E402
from turnstop.composition import turn_runner  # noqa: E402
from turnstop.core import scopes  # noqa: E402
from turnstop.core.ids import new_id  # noqa: E402
from turnstop.core.records import NewTurn  # noqa: E402
from turnstop.core.turn import CancelOutcome, CancelRequest  # noqa: E402
from turnstop.dialects.sessions.renderer import RENDERERS, STATELESS_KIND, created_event  # noqa: E402
from turnstop.platform.settings import Settings  # noqa: E402
from turnstop.runtime.runner import TurnRunner  # noqa: E402
from turnstop.store import Store  # noqa: E402
from turnstop_local.fake_upstream import Behaviour, FakeUpstream, RequestRecord  # noqa: E402

TENANT = "bench-upstream"
RATE = 500  # tokens per second, mid-stream and for the stream ratio
STREAM_TOKENS = 1000
PREFILL_S = 10.0
CANCEL_CHECK_MS = 200  # the shipped default (Settings.cancel_check_ms)
GOAL_CLOSE_P99_MS = 250.0
GOAL_STREAM_RATIO = 1.05
PROVIDERS = ("openai-chat", "bedrock-converse", "openai-responses")
# cancels per phase: (openai-chat, each other provider); --quick: a smoke run. The Responses
# API's cancel before its headers always waits for the response's id (about a second), so a
# few samples show it.
SAMPLES = {"full": (40, 12), "quick": (6, 3)}
FEW = {"full": 6, "quick": 2}
STREAM_RUNS = {"full": 5, "quick": 2}


def behaviours() -> dict[str, Behaviour]:
    """The fake's models, per provider (a model name per provider keeps their records apart)."""
    out = {}
    for provider in PROVIDERS:  # mid-stream: 10 s of tokens, well past the cancel
        out[f"{provider}/mid_stream"] = Behaviour(output_tokens=5_000, tokens_per_second=RATE)
        out[f"{provider}/prefill"] = Behaviour(prefill_s=PREFILL_S, output_tokens=100, tokens_per_second=RATE)
        out[f"{provider}/stream"] = Behaviour(output_tokens=STREAM_TOKENS, tokens_per_second=RATE)
    # Responses in background mode: the server answers response.created at once and is then
    # silent until the first token (the form a long prefill takes with that API)
    out["openai-responses/first_token_wait"] = Behaviour(
        first_token_delay_s=PREFILL_S, output_tokens=100, tokens_per_second=RATE
    )
    return out


def models_document(fake: FakeUpstream) -> dict[str, Any]:
    """A ``TURNSTOP_MODELS`` document: one route per fake model, named as the model."""
    where = {
        "openai-chat": {"base_url": fake.openai_base_url, "api_key_env": "TURNSTOP_BENCH_UPSTREAM_KEY"},
        "bedrock-converse": {"endpoint_url": fake.base_url, "region": "us-east-1"},
        "openai-responses": {"base_url": fake.openai_base_url, "api_key_env": "TURNSTOP_BENCH_UPSTREAM_KEY"},
    }
    routes = {
        name: {"provider": name.split("/")[0], "model": name, "max_output_tokens": 200_000, **where[name.split("/")[0]]}
        for name in behaviours()
    }
    return {"default": "openai-chat/stream", "routes": routes}


@dataclass
class Reader:
    """A session turn's live reader: when each delta and the terminal event arrived."""

    deltas: list[float] = field(default_factory=list)
    terminal: str = ""
    ended: float = 0.0
    prompt: str = ""


def _read(
    runner: TurnRunner, store: Store, route: str, out: Reader, prompt: str = "Write a long essay on cryptography"
) -> tuple[str, threading.Thread]:
    """Start a turn on ``route`` and a thread reading its live channel into ``out``."""
    out.prompt = prompt
    new = NewTurn(
        id=new_id("resp_"),
        kind=STATELESS_KIND,
        tenant=TENANT,
        scope=scopes.STATELESS,
        grace_ms=120_000,
        input={"prompt": prompt, "route": route},
    )
    turn = store.turns.start(new, created_event, run_as=runner.owner, lease_ms=runner.lease_ms)
    channel, worker = runner.start(turn)

    def drain() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            item = channel.get(timeout=1)
            if item is None:
                continue
            if not isinstance(item, list):
                break
            for ev in item:
                if ev.type.endswith(".delta"):
                    out.deltas.append(time.monotonic())
                elif ev.type != "response.created":
                    out.terminal, out.ended = ev.type, time.monotonic()
        worker.join(10)

    reader = threading.Thread(target=drain, name=f"reader-{turn.id}", daemon=True)
    reader.start()
    return turn.id, reader


def _record(fake: FakeUpstream, model: str, before: int) -> RequestRecord:
    """The first request for ``model`` after the first ``before`` records (the turn's call)."""
    found = fake.wait_for(lambda rs: next((r for r in rs[before:] if r.model == model), None), timeout=30)
    assert found is not None  # wait_for returns a truthy value or raises
    return found


@dataclass
class Sample:
    close_ms: float
    tokens_after_ack: int
    terminal_ms: float  # cancel acknowledged → the cancelled event at the reader
    upstream_cancel_ms: float | None = None  # Responses: acknowledged → the provider's cancel API answered


def one_cancel(fake: FakeUpstream, runner: TurnRunner, store: Store, route: str, rng: random.Random) -> Sample:
    before = len(fake.records.all())
    reader_out = Reader()
    turn_id, reader = _read(runner, store, route, reader_out)
    record = _record(fake, route, before)
    if route.endswith("/mid_stream"):
        if not record.wait(lambda r: r.tokens_sent >= 1, timeout=30):
            raise RuntimeError(f"{route}: no first token")
        time.sleep(rng.uniform(0.2, 0.5))
    else:  # silent: the cancel comes about a second into the silence (the phase against the keeper's ticks random)
        time.sleep(max(0.0, record.received_at + rng.uniform(1.0, 1.2) - time.monotonic()))
        if record.tokens_sent or record.disconnected_at is not None:
            raise RuntimeError(f"{route}: the upstream was not silent at the cancel")
    outcome, _ = store.turns.request_cancel(turn_id, tenant=TENANT, req=CancelRequest(source="bench"))
    acked = time.monotonic()
    if outcome is not CancelOutcome.CANCELLING:  # a running turn: the flag is set, the API answers 202
        raise RuntimeError(f"{route}: the cancel answered {outcome}")
    if not record.wait_disconnected(timeout=30) or record.disconnected_at is None:
        raise RuntimeError(f"{route}: the upstream connection was not closed")
    reader.join(30)
    if reader_out.terminal != "response.cancelled":
        raise RuntimeError(f"{route}: the turn ended {reader_out.terminal or 'never'}")
    produced = _generated(fake, record)
    sample = Sample(
        close_ms=(record.disconnected_at - acked) * 1000,
        tokens_after_ack=sum(1 for t in produced if t > acked),
        terminal_ms=max(0.0, (reader_out.ended - acked) * 1000),
    )
    if record.response_id is not None:  # the Responses API: its own cancel, so billing stops server-side
        if record.wait(lambda r: r.cancelled_at is not None, timeout=15) and record.cancelled_at is not None:
            sample.upstream_cancel_ms = (record.cancelled_at - acked) * 1000
    return sample


def _generated(fake: FakeUpstream, record: RequestRecord) -> list[float]:
    """When each token was generated: a background response's own clock (it goes on without
    a reader), else the stream's writes."""
    if record.response_id is not None:
        response = fake.responses.get(record.response_id)
        if response is not None:
            response.wait_stopped(timeout=15)
            return list(response.token_times)
    return list(record.token_times)


def _summary(values: list[float], digits: int = 1) -> dict[str, float]:
    return {"p50": pct(values, 0.5), "p99": pct(values, 0.99), "max": round(max(values), digits) if values else 0.0}


def cancels(
    fake: FakeUpstream, runner: TurnRunner, store: Store, route: str, n: int, rng: random.Random
) -> dict[str, Any]:
    samples = [one_cancel(fake, runner, store, route, rng) for _ in range(n)]
    close = [s.close_ms for s in samples]
    out: dict[str, Any] = {
        "n": n,
        "close_ms": _summary(close),
        "tokens_after_ack": _summary([float(s.tokens_after_ack) for s in samples], 0),
        "cancel_to_terminal_ms": _summary([s.terminal_ms for s in samples]),
        "goal_met": pct(close, 0.99) <= GOAL_CLOSE_P99_MS,
    }
    upstream_cancels = [s.upstream_cancel_ms for s in samples if s.upstream_cancel_ms is not None]
    if upstream_cancels:
        out["upstream_cancel_ms"] = {**_summary(upstream_cancels), "n": len(upstream_cancels)}
    return out


def one_stream(fake: FakeUpstream, runner: TurnRunner, store: Store, route: str) -> dict[str, float]:
    before = len(fake.records.all())
    out = Reader()
    _, reader = _read(runner, store, route, out)
    record = _record(fake, route, before)
    reader.join(60)
    if out.terminal != "response.completed" or not record.wait_finished(30) or record.finished_at is None:
        raise RuntimeError(f"{route}: the turn ended {out.terminal or 'never'}")
    upstream_s = record.finished_at - record.received_at
    lags = [(got - sent) * 1000 for got, sent in zip(out.deltas, record.token_times, strict=False)]
    return {
        "ratio": (out.ended - record.received_at) / upstream_s,
        "upstream_s": upstream_s,
        "reader_s": out.ended - record.received_at,
        "tokens": float(len(out.deltas)),
        "lag_p50_ms": pct(lags, 0.5),
        "lag_p99_ms": pct(lags, 0.99),
    }


def streams(fake: FakeUpstream, runner: TurnRunner, store: Store, route: str, runs: int) -> dict[str, Any]:
    one_stream(fake, runner, store, route)  # warm-up: imports, the first connection, the store's first writes
    got = [one_stream(fake, runner, store, route) for _ in range(runs)]
    ratios = sorted(g["ratio"] for g in got)
    median = ratios[len(ratios) // 2]
    return {
        "runs": runs,
        "tokens": int(got[0]["tokens"]),
        "ratio_median": round(median, 3),
        "ratio_max": round(ratios[-1], 3),
        "upstream_s_median": round(sorted(g["upstream_s"] for g in got)[len(got) // 2], 3),
        "token_lag_ms": {
            "p50": pct([g["lag_p50_ms"] for g in got], 0.5),
            "p99": pct([g["lag_p99_ms"] for g in got], 0.5),
        },
        "goal_met": median <= GOAL_STREAM_RATIO,
    }


def measure(store: Store, *, quick: bool = False, seed: int = 19) -> dict[str, Any]:
    """Every provider's phases against one fake upstream; bounded to a few minutes."""
    size = "quick" if quick else "full"
    first, others = SAMPLES[size]
    rng = random.Random(seed)
    os.environ.setdefault("TURNSTOP_BENCH_UPSTREAM_KEY", "sk-bench-upstream")
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    with FakeUpstream(strict=True) as fake:
        for name, behaviour in behaviours().items():
            fake.add_model(name, behaviour)
        settings = Settings(
            table=store.table, models=json.dumps(models_document(fake)), cancel_check_ms=CANCEL_CHECK_MS
        )
        runner = turn_runner(store, settings, RENDERERS)
        results: dict[str, Any] = {
            "setup": "in-process runner from the composition root, local store, loopback fake upstream",
            "cancel_check_ms": settings.cancel_check_ms,
            "rate_tps": RATE,
            "prefill_s": PREFILL_S,
            "goals": {"close_p99_ms": GOAL_CLOSE_P99_MS, "stream_ratio": GOAL_STREAM_RATIO},
            "providers": {},
        }
        for provider in PROVIDERS:
            n = first if provider == "openai-chat" else others
            few = FEW[size]
            phases = ["stream", "mid_stream", "prefill"]
            if provider == "openai-responses":
                phases.append("first_token_wait")
            row: dict[str, Any] = {}
            for phase in phases:
                route = f"{provider}/{phase}"
                if phase == "stream":
                    row[phase] = streams(fake, runner, store, route, STREAM_RUNS[size])
                else:
                    count = few if route == "openai-responses/prefill" else n
                    row[phase] = cancels(fake, runner, store, route, count, rng)
                print(f"upstream bench: {route} done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
            results["providers"][provider] = row
    results["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def main(argv: list[str] | None = None) -> None:
    from bench import report

    args = run_alone_args(argv, __doc__, "upstream", "a few samples per phase (a smoke run)")
    with on_a_local_table("bench-upstream") as local:
        result = measure(local.store, quick=args.quick)
    title = "Cancels that reach the model server"
    print(write_alone(args.out, local.kind, "upstream", result, title, report.upstream_lines(result)))


if __name__ == "__main__":
    main()
