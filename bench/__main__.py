"""Run the benchmarks and write bench/results/latest.json (and .md).

Measured on the local store (DynamoDB Local when Java 17+ is present, else moto's server),
in-process, so numbers compare runs on the same machine, not AWS latencies.

    make bench            # or: .venv/bin/python -m bench [--turns N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import threading
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "turnstop"), str(ROOT)]

import boto3  # noqa: E402

from tests.conftest import CallCounter  # noqa: E402
from turnstop.core import scopes  # noqa: E402
from turnstop.core.events import Event  # noqa: E402
from turnstop.core.records import NewTurn  # noqa: E402
from turnstop.core.turn import CancelRequest, Turn  # noqa: E402
from turnstop.dialects.sessions.renderer import (  # noqa: E402
    RENDERERS,  # noqa: E402
    STATELESS_KIND,
    created_event,
)
from turnstop.runtime.keeper import Cadence  # noqa: E402
from turnstop.runtime.model import ScriptedModel  # noqa: E402
from turnstop.runtime.runner import TurnRunner  # noqa: E402
from turnstop.store import Store  # noqa: E402
from turnstop_local.store import LocalStore  # noqa: E402
from turnstop_local.template import Template  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))], 3)


def summary(xs: list[float]) -> dict[str, float]:
    return {
        "n": len(xs),
        "p50_ms": pct(xs, 0.5),
        "p95_ms": pct(xs, 0.95),
        "max_ms": round(max(xs), 3),
        "mean_ms": round(statistics.fmean(xs), 3),
    }


def new_turn(store: Store, prompt: str) -> Turn:
    from turnstop.core.ids import new_id

    t = NewTurn(
        id=new_id("resp_"),
        kind=STATELESS_KIND,
        tenant="bench",
        scope=scopes.STATELESS,
        grace_ms=120_000,
        input={"prompt": prompt},
    )
    return store.turns.start(t, created_event)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = ap.parse_args()
    template = Template.load(ROOT / "template.yaml")
    with LocalStore(ROOT) as local:
        ddb = boto3.client("dynamodb", endpoint_url=local.dynamodb_endpoint, region_name="us-east-1")
        table = f"bench-{uuid.uuid4().hex[:8]}"
        ddb.create_table(TableName=table, **template.table_spec("TurnTable").kwargs)
        store = Store(table, dynamodb=ddb)
        counter = CallCounter(ddb)
        results: dict[str, Any] = {
            "store": local.kind,
            "python": platform.python_version(),
            "machine": platform.machine(),
        }

        # 1. a commit (one step, cancel check included) and a cancel request: latency and calls
        commit_ms, cancel_ms, commit_calls, cancel_calls = [], [], [], []
        for _ in range(args.turns):
            turn = store.turns.claim(new_turn(store, "x").id, "bench", 30_000)
            counter.reset()
            t0 = time.perf_counter()
            store.turns.publish(
                turn.id,
                "bench",
                [Event(turn.seq + 1, "response.delta", {"delta": "word "})],
                turn.seq,
                turn.usage,
                30_000,
            )
            commit_ms.append((time.perf_counter() - t0) * 1000)
            commit_calls.append(list(counter.calls))
            counter.reset()
            t0 = time.perf_counter()
            store.turns.request_cancel(turn.id, tenant="bench", req=CancelRequest(source="bench"))
            cancel_ms.append((time.perf_counter() - t0) * 1000)
            cancel_calls.append(list(counter.calls))
        results["commit_step"] = {**summary(commit_ms), "calls": commit_calls[0]}
        results["cancel_request"] = {**summary(cancel_ms), "calls": cancel_calls[0]}

        # 2. cancel → terminal state, with a worker streaming one word per 5 ms
        stop_ms = []
        for _ in range(max(5, args.turns // 4)):
            turn = new_turn(store, "Write a 5000-word essay")
            runner = TurnRunner(store, lambda t: ScriptedModel(5), renderers=RENDERERS, lease_ms=30_000)
            worker = threading.Thread(target=runner.handle, args=(turn.id,))
            worker.start()
            deadline = time.monotonic() + 10
            while (h := store.turns.get(turn.id)) and h.seq < 5 and time.monotonic() < deadline:
                time.sleep(0.002)
            t0 = time.perf_counter()
            store.turns.request_cancel(turn.id, tenant="bench", req=CancelRequest(source="bench"))
            worker.join()
            stop_ms.append((time.perf_counter() - t0) * 1000)
        results["cancel_to_terminal_5ms_steps"] = summary(stop_ms)

        # 3. memory and calls of a whole 2000-word turn in the worker
        turn = new_turn(store, "Write a 2000-word essay")
        counter.reset()
        tracemalloc.start()
        t0 = time.perf_counter()
        TurnRunner(store, lambda t: ScriptedModel(0), renderers=RENDERERS, lease_ms=30_000).handle(turn.id)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results["turn_2000_words"] = {
            "seconds": round(elapsed, 3),
            "peak_python_heap_kib": peak // 1024,
            "reads": len(counter.reads),
            "writes": len(counter.writes),
        }
        # 4. coalescing: commits per 500 words at one word per 2 ms, by flush interval
        coalescing = {}
        for flush_ms in (0, 20, 100):
            turn = new_turn(store, "Write a 500-word essay")
            counter.reset()
            t0 = time.perf_counter()
            TurnRunner(
                store,
                lambda t: ScriptedModel(2),
                renderers=RENDERERS,
                lease_ms=30_000,
                cadence=Cadence(flush_ms=flush_ms),
            ).handle(turn.id)
            coalescing[f"flush_{flush_ms}ms"] = {
                "transactions": counter.calls.count("TransactWriteItems"),
                "seconds": round(time.perf_counter() - t0, 3),
            }
        results["coalescing_500_words"] = coalescing
        ddb.delete_table(TableName=table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    lines = ["# turnstop benchmark", "", f"store: {results['store']}, python {results['python']}", ""]
    lines += [f"- **{k}**: `{json.dumps(v)}`" for k, v in results.items() if isinstance(v, dict)]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
