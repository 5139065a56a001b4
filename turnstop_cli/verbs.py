"""The three verbs every dialect of the command line answers, ``status``, ``cancel`` and
``tail`` (``Dialect``; each dialect's own endpoints behind them are in ``dialects.py``), and what
they share: which event ends a turn, which answer is worth asking again, a cancel's summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from turnstop_cli.client import Api
from turnstop_cli.errors import CliError, usage
from turnstop_cli.output import Out
from turnstop_cli.routing import TurnRef

TERMINAL = ("completed", "cancelled", "failed", "incomplete")


@dataclass(frozen=True)
class TailOptions:
    after: int = 0  # resume after this event (sessions: its id; llm: its sequence_number)
    interval: float = 0.5  # seconds between polls (omni, tasks, chat)
    max_reconnects: int = 10  # consecutive failed reconnects (or polls) before giving up


def terminal_state(event: str) -> str | None:
    """``message.cancelled`` -> ``cancelled``; None for an event that does not end a turn."""
    suffix = event.rsplit(".", 1)[-1]
    return suffix if "." in event and suffix in TERMINAL else None


def retryable(error: CliError) -> bool:
    """An answer worth asking again after a pause: the API is overloaded or failing for now (5xx, 429)."""
    return error.status is not None and (error.status == 429 or error.status >= 500)


def backoff(failures: int) -> float:
    return float(min(0.25 * 2 ** (failures - 1), 5.0))


class Dialect:
    name = ""

    def status(self, api: Api, ref: TurnRef) -> dict[str, Any]:
        raise NotImplementedError

    def cancel(self, api: Api, ref: TurnRef, reason: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def tail(self, api: Api, ref: TurnRef, out: Out, options: TailOptions) -> str:
        raise NotImplementedError

    def _no_reason(self, reason: str | None) -> None:
        if reason is not None:
            raise usage(
                f"the {self.name} dialect's cancel endpoint records no reason: drop --reason",
                hint="sessions and tasks cancels take a reason; so does a bulk cancel (--scope) and the cancel queue",
            )


def cancel_summary(ref: TurnRef, dialect: str, http_status: int, outcome: str, answer: Any) -> dict[str, Any]:
    return {"id": ref.id, "dialect": dialect, "outcome": outcome, "http_status": http_status, "detail": answer}
