"""The agents benchmark: is a cancel of your own agent's turn as fast as a built-in turn's?

Turns run in-process as they run in a turn function (the composition root's runner, the local
store, the keeper reading the cancel flag at the shipped 200 ms), read live as a session
stream reads them. Three routes, cancelled by the cancel API's write (``request_cancel``: its
return is the moment the API would answer 202), each ``SAMPLES`` times:

- **built-in**: the scripted model, a word every 20 ms, cancelled mid-stream;
- **agent, mid-stream**: an ``external`` route whose handler emits a word every 20 ms;
- **agent, in a tool**: the same handler inside a tool that waits up to 5 minutes on the turn's
  ``cancel_event`` (what the examples' tools do), cancelled while it waits.

Reported: cancel acknowledged → the reader holds the terminal event, and for the tool, →
the tool saw the signal. Goal: the agent's p99 within one cancel-check cadence of the
built-in turn's. ``make bench-agents`` writes bench/results/agents.json and agents.md.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "turnstop"), str(ROOT)]

from bench.streaming import pct  # noqa: E402
from bench.tables import on_a_local_table, run_alone_args, write_alone  # noqa: E402
from bench.upstream import TENANT, Reader, _read  # noqa: E402
from turnstop.composition import turn_runner  # noqa: E402
from turnstop.core.turn import CancelOutcome, CancelRequest  # noqa: E402
from turnstop.dialects.sessions.renderer import RENDERERS  # noqa: E402
from turnstop.platform.settings import Settings  # noqa: E402
from turnstop.store import Store  # noqa: E402
from turnstop.worker import WorkerTurn, serve  # noqa: E402

CANCEL_CHECK_MS = 200
SAMPLES = {"full": 30, "quick": 4}
TOOL_SAW: dict[str, float] = {}  # a turn's input → when its tool saw the cancel


@serve("bench-stream")
def streaming_agent(turn: WorkerTurn) -> None:
    for i in range(5_000):
        turn.text(f"w{i} ")
        if turn.cancel_event.wait(0.02):
            return


@serve("bench-tool")
def tool_agent(turn: WorkerTurn) -> None:
    turn.text("Let me look that up. ")
    turn.tool_call("slow_lookup", {"query": turn.input})
    if turn.cancel_event.wait(300):  # the tool's work, stopped by the cancel
        TOOL_SAW[turn.input] = time.monotonic()


ROUTES = {
    "default": "built-in",
    "routes": {
        "built-in": {"provider": "scripted", "step_ms": 20},
        "agent-stream": {"provider": "external", "queue": "bench-stream"},
        "agent-tool": {"provider": "external", "queue": "bench-tool"},
    },
}


def one_cancel(runner: Any, store: Store, route: str, rng: random.Random) -> tuple[float, float | None]:
    out = Reader()
    turn_id, reader = _read(runner, store, route, out, prompt=f"{route} {uuid.uuid4().hex}")
    deadline = time.monotonic() + 30
    while not out.deltas and time.monotonic() < deadline:
        time.sleep(0.005)  # polling for the first delta, under a deadline
    time.sleep(rng.uniform(0.2, 0.5))  # mid-stream, or inside the tool
    outcome, _ = store.turns.request_cancel(turn_id, tenant=TENANT, req=CancelRequest(source="bench"))
    acked = time.monotonic()
    if outcome is not CancelOutcome.CANCELLING:
        raise RuntimeError(f"{route}: the cancel answered {outcome}")
    reader.join(30)
    if out.terminal != "response.cancelled":
        raise RuntimeError(f"{route}: the turn ended {out.terminal or 'never'}")
    saw = TOOL_SAW.pop(out.prompt, None)
    return (out.ended - acked) * 1000, None if saw is None else (saw - acked) * 1000


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 0.5), "p99": pct(values, 0.99), "max": round(max(values), 1) if values else 0.0}


def measure(store: Store, *, quick: bool = False, seed: int = 22) -> dict[str, Any]:
    rng = random.Random(seed)
    settings = Settings(table=store.table, models=json.dumps(ROUTES), cancel_check_ms=CANCEL_CHECK_MS)
    runner = turn_runner(store, settings, RENDERERS)
    n = SAMPLES["quick" if quick else "full"]
    result: dict[str, Any] = {"cancel_check_ms": CANCEL_CHECK_MS, "samples": n, "routes": {}}
    for route in ROUTES["routes"]:
        terminal: list[float] = []
        tool: list[float] = []
        for _ in range(n):
            ended, saw = one_cancel(runner, store, route, rng)
            terminal.append(ended)
            if saw is not None:
                tool.append(saw)
        row = {"terminal_ms": _summary(terminal)}
        if tool:
            row["tool_saw_cancel_ms"] = _summary(tool)
        result["routes"][route] = row
    built_in = result["routes"]["built-in"]["terminal_ms"]["p99"]
    worst = max(r["terminal_ms"]["p99"] for r in result["routes"].values())
    result["goal"] = {
        "agent_p99_within_ms_of_built_in": CANCEL_CHECK_MS,
        "worst_gap_ms": round(worst - built_in, 1),
        "met": worst - built_in <= CANCEL_CHECK_MS,
    }
    return result


def lines(result: dict[str, Any]) -> list[str]:
    out = [
        "",
        f"Cancel acknowledged → terminal event at the reader (cancel check every {result['cancel_check_ms']} ms, "
        f"{result['samples']} cancels each):",
        "",
        "| route | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|",
    ]
    for route, row in result["routes"].items():
        t = row["terminal_ms"]
        out.append(f"| {route} | {t['p50']} | {t['p99']} | {t['max']} |")
        if "tool_saw_cancel_ms" in row:
            s = row["tool_saw_cancel_ms"]
            out.append(f"| {route}: the tool saw the cancel | {s['p50']} | {s['p99']} | {s['max']} |")
    goal = result["goal"]
    out += [
        "",
        f"Goal: an agent's p99 within {goal['agent_p99_within_ms_of_built_in']} ms of the built-in turn's: "
        f"worst gap {goal['worst_gap_ms']} ms, {'met' if goal['met'] else 'missed'}.",
    ]
    return out


def main(argv: list[str] | None = None) -> None:
    args = run_alone_args(argv, __doc__, "agents", "a few samples per route (a smoke run)")
    with on_a_local_table("bench-agents") as local:
        result = measure(local.store, quick=args.quick)
    print(write_alone(args.out, local.kind, "agents", result, "Cancels of your own agent's turns", lines(result)))


if __name__ == "__main__":
    main()
