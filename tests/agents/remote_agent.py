"""An example agent as a remote worker, for test_remote_agents_e2e.py: ``examples.remote_worker``
with the example's handler wrapped to print one line per step the test waits for.

    TURNSTOP_WORKER_KEY=<key> python -m tests.agents.remote_agent <base url> <queue> <module:function>

Lines: ``READY``; per turn ``CLAIMED <input>``, ``TOOL_RUNNING <input>`` once its tool runs, and
``DONE <input> {"cancelled", "tool_stopped", "words", "usage"}`` when its handler returned.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading

from examples.remote_worker import handler
from turnstop.worker import WorkerTurn
from turnstop.worker.remote import RemoteWorker

_SAYING = threading.Lock()


def say(line: str) -> None:
    """One whole line at a time: the tool's watcher speaks from a thread of its own, and a print
    writes its text and its newline separately."""
    with _SAYING:
        print(line, flush=True)


def main(base_url: str, queue: str, spec: str) -> None:
    inner = handler(spec)
    example = importlib.import_module(spec.partition(":")[0])

    def handle(turn: WorkerTurn) -> None:
        say(f"CLAIMED {turn.input}")
        done = threading.Event()

        def watch_the_tool() -> None:
            while not done.is_set():
                if example.TOOL_RUNNING.wait(0.05):
                    say(f"TOOL_RUNNING {turn.input}")
                    return

        threading.Thread(target=watch_the_tool, daemon=True).start()
        try:
            inner(turn)
        finally:
            done.set()
            usage = turn.usage and [turn.usage.input_tokens, turn.usage.output_tokens]
            report = {
                "cancelled": turn.cancelled,
                "tool_stopped": example.TOOL_STOPPED.is_set(),
                "words": len(turn.output.split()),
                "usage": usage,
            }
            example.TOOL_RUNNING.clear()
            example.TOOL_STOPPED.clear()
            say(f"DONE {turn.input} {json.dumps(report)}")

    say("READY")
    RemoteWorker(base_url, os.environ["TURNSTOP_WORKER_KEY"], queue, flush_s=0.05, heartbeat_s=0.5).run(handle)


if __name__ == "__main__":
    main(*sys.argv[1:4])
