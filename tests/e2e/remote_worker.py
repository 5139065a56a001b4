"""A remote worker in a process of its own, for test_remote_workers_e2e.py.

    python -m tests.e2e.remote_worker <base url> <worker key> <queue>

It prints one line per step it reaches (the test reads them): ``CLAIMED <offer id>``,
``IN_TOOL``, ``TOOL_SAW_CANCEL``, ``REFUSED_LOCALLY``, ``SERVER_SAYS <answer>``, ``HANGING``,
``HANG_TOLD_TO_STOP``.
"""

from __future__ import annotations

import json
import sys

from turnstop.worker import TurnCancelled, WorkerTurn
from turnstop.worker.remote import RemoteTurn, RemoteWorker


def say(line: str) -> None:
    print(line, flush=True)


def handle(turn: WorkerTurn) -> None:
    remote: RemoteTurn = turn.remote  # type: ignore[attr-defined]
    say(f"CLAIMED {remote.offer_id}")
    if turn.input.startswith("quick"):
        turn.text("hello from ")
        turn.text(f"a remote worker: {turn.input}")
        turn.finish(input_tokens=5, output_tokens=7)
        return
    if turn.input.startswith("hang"):  # alive, silent, no heartbeat: hung
        say("HANGING")
        if turn.cancel_event.wait(300):
            say("HANG_TOLD_TO_STOP")
        return
    if turn.input.startswith("beat"):  # silent past the route's idle timeout, but heartbeating
        for _ in range(7):
            turn.heartbeat()
            if turn.cancel_event.wait(1.0):
                return
        turn.text("still here")
        turn.finish(input_tokens=1, output_tokens=2)
        return
    turn.progress("thinking it over")
    turn.tool_call("slow_tool", {"q": turn.input})
    say("IN_TOOL")
    if not turn.cancel_event.wait(300):  # the tool's long work, interrupted by the cancel
        return
    say("TOOL_SAW_CANCEL")
    try:
        turn.text("LOCAL_AFTER_CANCEL")
    except TurnCancelled:
        say("REFUSED_LOCALLY")
    # a worker that ignores the signal and posts anyway: the API refuses it
    answer = remote.worker.post(f"offers/{remote.offer_id}/events",
                                {"token": remote.token, "events": [["text", "SNEAKY_AFTER_CANCEL"]]})  # fmt: skip
    say(f"SERVER_SAYS {json.dumps(answer, sort_keys=True)}")


if __name__ == "__main__":
    base_url, key, queue = sys.argv[1:4]
    say("READY")
    RemoteWorker(base_url, key, queue, flush_s=0.05, heartbeat_s=0.5).run(handle)
