"""What the commands print: rich text for people, or ``--json`` for scripts.

With ``--json`` stdout holds only JSON: one document per command, or one object per line for
``tail``. Notes (reconnects, progress) and errors go to stderr in both modes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from turnstop_cli.errors import CliError

_STATE_STYLE = {
    "cancelled": "bold yellow",
    "completed": "bold green",
    "failed": "bold red",
    "incomplete": "yellow",
    "running": "cyan",
    "cancelling": "yellow",
    "queued": "blue",
    "pending": "blue",
}


class Out:
    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        # Piped output is not cut at 80 columns (rich's default off a terminal): ids stay whole.
        self.console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
        self.err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)
        self._mid_line = False  # streamed text without its newline yet

    # ------------------------------------------------------------------------- plumbing

    def document(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, default=str) + "\n")
        sys.stdout.flush()

    def note(self, message: str) -> None:
        self._end_line()
        self.err.print(Text(message, style="dim"))

    def error(self, error: CliError) -> None:
        self._end_line()
        if self.json_mode:
            sys.stderr.write(json.dumps(error.to_json(), default=str) + "\n")
            return
        self.err.print(Text(f"error: {error.message}", style="bold red"))
        if error.hint:
            self.err.print(Text(f"hint: {error.hint}", style="dim"))

    def _end_line(self) -> None:
        if self._mid_line:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self._mid_line = False

    def busy(self) -> Progress:
        """A spinner on stderr while something takes a while (a terminal only; never with --json)."""
        return Progress(
            # markup=False: a description carries ids and values typed by users or sent by the API
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            console=self.err,
            transient=True,
            disable=self.json_mode or not self.err.is_terminal,
        )

    # ----------------------------------------------------------------------------- tail

    def tail_event(
        self,
        *,
        turn: str,
        dialect: str,
        event: str,
        seq: int | str | None,
        data: Any,
        delta: str | None,
        state: str | None,
    ) -> None:
        """One event of a followed turn; ``state`` is set on the terminal one."""
        if self.json_mode:
            self.document(
                {
                    "id": turn,
                    "dialect": dialect,
                    "event": event,
                    "seq": seq,
                    "state": state,
                    "delta": delta,
                    "data": data,
                }
            )
            return
        if delta:
            sys.stdout.write(delta)
            sys.stdout.flush()
            self._mid_line = not delta.endswith("\n")
            return
        if state is None:
            self.note(f"· {event}" + (f" (event {seq})" if seq is not None else ""))
            return
        self._end_line()
        line = Text("■ ", style=_STATE_STYLE.get(state, "bold"))
        line.append(f"{event}", style=_STATE_STYLE.get(state, "bold"))
        summary = terminal_summary(data)
        if summary:
            line.append(f"  {summary}", style="dim")
        self.err.print(line)

    # ---------------------------------------------------------------------- documents

    def status(self, summary: Mapping[str, Any]) -> None:
        if self.json_mode:
            self.document(summary)
            return
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="dim")
        table.add_column()
        for key, value in summary.items():
            if key == "detail" or value is None:
                continue
            style = _STATE_STYLE.get(str(value), "") if key == "state" else ""
            table.add_row(Text(key), Text(compact(value), style=style))
        self.console.print(table)

    def ledger(self, entries: list[dict[str, Any]], upstream: dict[str, Any] | None = None) -> None:
        if self.json_mode:
            self.document({"object": "list", "data": entries, **({"upstream": upstream} if upstream else {})})
            return
        if upstream:  # the turn's model cost to the platform, billed to the end user or not
            guess = " (estimated)" if upstream.get("estimated") else ""
            self.console.print(Text(f"upstream cost{guess}: {compact(upstream)}"))
        if not entries:
            self.console.print(Text("no ledger entries", style="dim"))
            return
        table = Table("at", "turn", "kind", "billed", "amounts")
        for entry in entries:
            rest = {k: v for k, v in entry.items() if k not in ("at", "turn_id", "kind", "billed", "end_user")}
            table.add_row(  # Text, never markup: these are the API's strings
                Text(when(entry.get("at"))),
                Text(str(entry.get("turn_id", ""))),
                Text(str(entry.get("kind", ""))),
                Text(compact(entry.get("billed", ""))),
                Text(compact(rest)),
            )
        self.console.print(table)

    def report(self, report: Mapping[str, Any]) -> None:
        """A bulk cancel's report."""
        if self.json_mode:
            self.document(report)
            return
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="dim")
        table.add_column()
        for key in ("id", "status", "scope", "reason", "matched", "cancelled", "already_finished", "failed", "pages"):
            if report.get(key) is not None:
                table.add_row(Text(key), Text(compact(report[key])))
        self.console.print(table)


def compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and all(not isinstance(v, Mapping | list) for v in value.values()):
        return ", ".join(f"{k}={compact(v)}" for k, v in value.items())
    return json.dumps(value, default=str)


def when(epoch_ms: Any) -> str:
    if isinstance(epoch_ms, int | float) and not isinstance(epoch_ms, bool):
        return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(epoch_ms or "")


def terminal_summary(data: Any) -> str:
    """usage / billed / error of a terminal event or object, when it has them."""
    if not isinstance(data, Mapping):
        return ""
    inner = data.get("response")
    obj: Mapping[str, Any] = inner if isinstance(inner, Mapping) else data
    parts: list[str] = []
    for key in ("usage", "billed", "error", "billing"):
        value = obj.get(key)
        if value not in (None, {}, ""):
            parts.append(f"{key}: {compact(_flat(value))}")
    return "  ".join(parts)


def _flat(value: Any) -> Any:
    """A summary's scalars, without the counters a dialect reports as zero."""
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if not isinstance(v, Mapping | list) and v not in (0, "0")}
    return value


def rows(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(item) for item in items]
