"""A worker that ignores the cancel and keeps emitting (tests/agents/test_agents_e2e.py): every
emit after the cancel is refused, and it gives up only after a thousand refusals."""

from __future__ import annotations

from turnstop.worker import TurnCancelled, WorkerTurn


def handle(turn: WorkerTurn) -> None:
    refused = 0
    i = 0
    while refused < 1000:
        try:
            turn.text(f"w{i} ")
            if i == 5:  # a slow step after its first words: the reader cancels meanwhile
                turn.cancel_event.wait(300)
        except TurnCancelled:
            refused += 1
        i += 1
