"""The streaming benchmarks: cost, wall time, live-token lag and cancel latency of one turn,
per design, on the store the benchmark runs against."""

from __future__ import annotations

import random
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

from bench.designs import DESIGNS, Design, TimedModel
from tests.conftest import CapacityMeter
from turnstop.store import Store

# On-demand prices, us-east-1 (AWS DynamoDB pricing page; see docs/cost.md for the date).
USD_PER_WRITE_UNIT = 0.625 / 1_000_000
USD_PER_READ_UNIT = 0.125 / 1_000_000
# A small model's output price (USD per 1M output tokens), for scale: 1,000 tokens = $0.0006.
SMALL_MODEL_USD_PER_M_TOKENS = 0.60
TOKENS = 1000
SHORT_PROMPT = "Write a 1000-word essay on cryptography"
LONG_PROMPT = SHORT_PROMPT + " " + ("context " * 4096)[: 32 * 1024 - len(SHORT_PROMPT) - 1]
READS = {"GetItem", "Query", "Scan", "BatchGetItem"}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1) if ordered else 0.0


@dataclass
class Cost:
    write_units: float
    read_units: float

    @property
    def usd(self) -> float:
        return self.write_units * USD_PER_WRITE_UNIT + self.read_units * USD_PER_READ_UNIT

    def json(self) -> dict[str, Any]:
        return {
            "write_units": round(self.write_units, 1),
            "read_units": round(self.read_units, 1),
            "usd": round(self.usd, 8),
        }


def cost_of(meter: CapacityMeter) -> Cost:
    writes = reads = 0.0
    for op, units in meter.calls:
        total = sum(units.values())
        if op in READS:
            reads += total
        else:
            writes += total
    return Cost(writes, reads)


def by_call(meter: CapacityMeter) -> dict[str, dict[str, float]]:
    """Calls and units per operation (with index units apart): where a turn's cost goes."""
    out: dict[str, dict[str, float]] = {}
    for op, units in meter.calls:
        row = out.setdefault(op, {"calls": 0, "table_units": 0.0, "index_units": 0.0})
        row["calls"] += 1
        row["table_units"] += units.get("table", 0.0)
        row["index_units"] += sum(v for k, v in units.items() if k != "table")
    return out


def one_stream(store: Store, meter: CapacityMeter, design: str, rate: float, prompt: str) -> dict[str, Any]:
    """A 1,000-token turn with its live reader: cost, wall time, each token's lag."""
    model = TimedModel(TOKENS, rate)
    meter.reset()
    run = DESIGNS[design](store, prompt).run(model)
    cost = cost_of(meter)
    calls = by_call(meter)
    lags = [(r - p) * 1000 for r, p in zip(run.received, model.produced, strict=False)]
    return {
        "cost": cost.json(),
        "wall_s": round(run.ended - run.started, 3),
        "model_s": round(model.seconds, 3),
        "wall_over_model": round((run.ended - run.started) / model.seconds, 3),
        "token_lag_ms": {"p50": pct(lags, 0.5), "p99": pct(lags, 0.99), "max": pct(lags, 1.0)},
        "tokens": len(run.received),
        "terminal": run.terminal,
        "by_call": calls,
    }


def one_cancel(store: Store, design: str, rate: float, silence: bool) -> float:
    """Cancel mid-turn; milliseconds from the cancel's answer to the terminal event at the reader."""
    at = random.randint(40, 120)
    model = TimedModel(TOKENS * 10, rate, silence_at=at if silence else None, silence_s=3.0 if silence else 0.0)
    d: Design = DESIGNS[design](store, SHORT_PROMPT)
    answered: list[float] = []

    def cancel_now() -> None:
        if silence:  # well into the silence: the model is waiting on a slow call
            time.sleep(0.3)
        d.cancel(d.turn_id)
        answered.append(time.perf_counter())

    canceller = threading.Thread(target=cancel_now, daemon=True)

    def on_token(i: int) -> None:
        if i == at - 1:
            canceller.start()

    run = d.run(model, on_token)
    assert run.terminal == "response.cancelled", run.terminal
    canceller.join()
    # On a loaded machine the reader may see the end before the canceller sees its answer:
    # the stop was then no later than the answer (0 ms after it).
    return max(0.0, (run.ended - answered[0]) * 1000)


def streams(store: Store, meter: CapacityMeter, designs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for design in designs:
        for rate in (50, 500):
            for label, prompt in (("short_prompt", SHORT_PROMPT), ("prompt_32kb", LONG_PROMPT)):
                out[f"{design}/{rate}tps/{label}"] = one_stream(store, meter, design, rate, prompt)
    return out


def cancels(store: Store, designs: list[str], trials: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for design in designs:
        for rate, silence, label in ((50, False, "50tps"), (500, False, "500tps"), (50, True, "silent_model")):
            n = trials if design == "default" or not silence else max(3, trials // 4)
            ms = [one_cancel(store, design, rate, silence) for _ in range(n)]
            out[f"{design}/{label}"] = {
                "n": n,
                "p50_ms": pct(ms, 0.5),
                "p99_ms": pct(ms, 0.99),
                "max_ms": pct(ms, 1.0),
                "mean_ms": round(statistics.fmean(ms), 1),
            }
    return out
