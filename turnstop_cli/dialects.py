"""Each dialect's own endpoints behind the three verbs of ``verbs.py``: ``status``, ``cancel``, ``tail``.

Streams (sessions, llm) are followed over SSE and resumed from the last event on a drop
(``Last-Event-ID`` / ``starting_after``); the others (omni, tasks, chat) have no stream to
resume and are polled. A cancel always goes through the dialect's own cancel endpoint, so it
answers in that dialect's words (docs/cli.md).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, SSEError

from turnstop_cli.client import Api, parse_data
from turnstop_cli.errors import CliError, ExitCode
from turnstop_cli.output import Out
from turnstop_cli.routing import TurnRef
from turnstop_cli.verbs import TERMINAL, Dialect, TailOptions, backoff, cancel_summary, retryable, terminal_state

# `status` of a sessions turn replays its events: a replay silent this long, or still going
# after REPLAY_BUDGET_SECONDS, means the turn is still running (readers other than the first see
# a running turn's events once a flush makes them durable: every 2 s by default, TURNSTOP_FLUSH_MS).
REPLAY_IDLE_SECONDS = 3.0
REPLAY_BUDGET_SECONDS = 2.0


# ------------------------------------------------------------------------------- streams


class StreamDialect(Dialect):
    """A dialect whose turns are read as SSE and resumed from a cursor."""

    def stream_path(self, ref: TurnRef) -> str:
        raise NotImplementedError

    def resume_request(self, cursor: int) -> tuple[dict[str, Any], dict[str, str]]:
        """Query parameters and headers that resume after ``cursor``."""
        raise NotImplementedError

    def cursor_of(self, event: ServerSentEvent, data: Any) -> int | None:
        raise NotImplementedError

    def tail(self, api: Api, ref: TurnRef, out: Out, options: TailOptions) -> str:
        cursor, failures, seen = options.after, 0, False
        while True:
            params, headers = self.resume_request(cursor)
            try:
                with api.sse(self.stream_path(ref), what=f"tail {ref.label}", params=params, headers=headers) as source:
                    for sse in source.iter_sse():
                        data = parse_data(sse.data)
                        seq = self.cursor_of(sse, data)
                        seen = True
                        if seq is not None and seq <= cursor:
                            continue  # already printed: never twice, whatever a server replays
                        if seq is not None:  # progress: the reconnect budget starts afresh
                            cursor, failures = seq, 0
                        state = terminal_state(sse.event)
                        delta = data.get("delta") if isinstance(data, dict) and sse.event.endswith(".delta") else None
                        out.tail_event(
                            turn=ref.id,
                            dialect=self.name,
                            event=sse.event,
                            seq=cursor,
                            data=data,
                            delta=delta if isinstance(delta, str) else None,
                            state=state,
                        )
                        if state is not None:
                            return state
                reason = "the stream ended before the turn did"
            except httpx.ConnectError as error:
                if not seen:  # nothing there at all: no point in retrying
                    raise api.unreachable(error) from error
                reason = f"{type(error).__name__}: {error}"
            except (httpx.TransportError, SSEError) as error:
                reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            except CliError as error:
                if not retryable(error):
                    raise
                failures += 1
                if failures > options.max_reconnects:
                    error.hint = f"resume later with --after {cursor}"
                    raise
                out.note(f"{error.message}; retrying after event {cursor} ({failures}/{options.max_reconnects})")
                time.sleep(backoff(failures))
                continue
            failures += 1
            if failures > options.max_reconnects:
                raise CliError(
                    f"lost the stream of {ref.label} {failures} times in a row ({reason})",
                    ExitCode.UNREACHABLE,
                    hint=f"resume later with --after {cursor}",
                )
            out.note(f"connection lost ({reason}); resuming after event {cursor} ({failures}/{options.max_reconnects})")
            time.sleep(backoff(failures))


class Sessions(StreamDialect):
    name = "sessions"

    def base(self, ref: TurnRef) -> str:
        if ref.session_id:
            return f"/v1/sessions/{ref.session_id}/responses/{ref.id}"
        return f"/v1/responses/{ref.id}"

    def stream_path(self, ref: TurnRef) -> str:
        return self.base(ref) + "/events"

    def resume_request(self, cursor: int) -> tuple[dict[str, Any], dict[str, str]]:
        return {}, ({"Last-Event-ID": str(cursor)} if cursor else {})

    def cursor_of(self, event: ServerSentEvent, data: Any) -> int | None:
        return int(event.id) if event.id and event.id.isdigit() else None

    def cancel(self, api: Api, ref: TurnRef, reason: str | None) -> dict[str, Any]:
        body = {"reason": reason} if reason is not None else None
        response = api.request("POST", self.base(ref) + "/cancel", what=f"cancel {ref.label}", json=body)
        answer = api.answer(response, f"cancel {ref.label}")
        return cancel_summary(ref, self.name, response.status_code, str(answer.get("status")), answer)

    def status(self, api: Api, ref: TurnRef) -> dict[str, Any]:
        """The sessions dialect has no status endpoint: replay the turn's events until the
        terminal one, or until the replay goes quiet (the turn is still running)."""
        events, last_name, last_data, first = 0, None, None, None
        state = None
        deadline = time.monotonic() + REPLAY_BUDGET_SECONDS
        try:
            idle = httpx.Timeout(10.0, read=REPLAY_IDLE_SECONDS)
            with api.sse(self.stream_path(ref), what=f"status {ref.label}", timeout=idle) as source:
                for sse in source.iter_sse():
                    events += 1
                    last_name, last_data = sse.event, parse_data(sse.data)
                    first = first if first is not None else last_data
                    state = terminal_state(sse.event)
                    if state is not None or time.monotonic() > deadline:
                        break
        except httpx.ReadTimeout:
            pass  # quiet: still running
        except httpx.TransportError as error:
            raise api.unreachable(error) from error
        if state is None:
            state = "running" if events > 1 else "queued"
        status = (last_data or {}).get("status") if isinstance(last_data, dict) else None
        return {
            "id": ref.id,
            "dialect": self.name,
            "session_id": ref.session_id,
            "state": state,
            "status": status or state,
            "events": events,
            "last_event": last_name,
            "usage": last_data.get("usage") if isinstance(last_data, dict) else None,
            "billed": last_data.get("billed") if isinstance(last_data, dict) else None,
            "detail": last_data if state in TERMINAL else first,
        }


class Llm(StreamDialect):
    name = "llm"

    def path(self, ref: TurnRef) -> str:
        return f"/api/v1/llm/responses/{ref.id}"

    def stream_path(self, ref: TurnRef) -> str:
        return self.path(ref)

    def resume_request(self, cursor: int) -> tuple[dict[str, Any], dict[str, str]]:
        return {"stream": "true", "starting_after": str(cursor)}, {}

    def cursor_of(self, event: ServerSentEvent, data: Any) -> int | None:
        seq = data.get("sequence_number") if isinstance(data, dict) else None
        return seq if isinstance(seq, int) else None

    def cancel(self, api: Api, ref: TurnRef, reason: str | None) -> dict[str, Any]:
        self._no_reason(reason)
        response = api.request("POST", self.path(ref) + "/cancel", what=f"cancel {ref.id}")
        answer = api.answer(response, f"cancel {ref.label}")
        return cancel_summary(ref, self.name, response.status_code, str(answer.get("status")), answer)

    def status(self, api: Api, ref: TurnRef) -> dict[str, Any]:
        obj = api.json("GET", self.path(ref), what=f"status {ref.id}")
        status = str(obj.get("status"))
        return {
            "id": ref.id,
            "dialect": self.name,
            "state": {"in_progress": "running"}.get(status, status),
            "status": status,
            "model": obj.get("model"),
            "background": obj.get("background"),
            "usage": obj.get("usage"),
            "error": obj.get("error"),
            "detail": obj,
        }


# ------------------------------------------------------------------------------- polling


@dataclass(frozen=True)
class PollView:
    state: str  # normalized: queued, running, cancelling, completed, failed, cancelled, incomplete
    status: str  # the dialect's own word
    text: str  # the output so far


class PollDialect(Dialect):
    """A dialect without a resumable stream: its object is polled until it is terminal."""

    # A status after which nothing more can be seen once it has stood still this long (chat: see Chat).
    stuck_status: str | None = None
    stuck_seconds = 0.0

    def fetch(self, api: Api, ref: TurnRef) -> Any:
        raise NotImplementedError

    def view(self, obj: Any) -> PollView:
        raise NotImplementedError

    def tail(self, api: Api, ref: TurnRef, out: Out, options: TailOptions) -> str:
        shown, last_status, failures, polls = "", None, 0, 0
        changed_at, last_text = time.monotonic(), ""
        emit = functools.partial(out.tail_event, turn=ref.id, dialect=self.name, seq=None)  # a poll has no cursor
        while True:
            try:
                obj = self.fetch(api, ref)
            except CliError as error:
                if not (retryable(error) or (error.code is ExitCode.UNREACHABLE and polls > 0)):
                    raise
                failures += 1
                if failures > options.max_reconnects:
                    raise
                out.note(f"poll failed ({error.message}); retrying ({failures}/{options.max_reconnects})")
                time.sleep(backoff(failures))
                continue
            polls, failures = polls + 1, 0
            view = self.view(obj)
            if view.status != last_status or view.text != last_text:
                changed_at, last_text = time.monotonic(), view.text
            elif view.status == self.stuck_status and time.monotonic() - changed_at >= self.stuck_seconds:
                out.note(self.stuck_note(view))
                view = PollView("incomplete", view.status, view.text)
            terminal = view.state in TERMINAL
            if view.status != last_status and not terminal:
                emit(event=f"{self.name}.{view.status}", data=obj, delta=None, state=None)
                last_status = view.status
            if len(view.text) > len(shown) and view.text.startswith(shown):
                delta = view.text[len(shown) :]
                emit(event=f"{self.name}.delta", data={"delta": delta}, delta=delta, state=None)
                shown = view.text
            if terminal:
                emit(event=f"{self.name}.{view.status}", data=obj, delta=None, state=view.state)
                return view.state
            time.sleep(options.interval)

    def status(self, api: Api, ref: TurnRef) -> dict[str, Any]:
        obj = self.fetch(api, ref)
        view = self.view(obj)
        return {
            "id": ref.id,
            "dialect": self.name,
            "state": view.state,
            "status": view.status,
            **self.extra(obj),
            "detail": obj,
        }

    def extra(self, obj: Any) -> dict[str, Any]:
        return {}

    def stuck_note(self, view: PollView) -> str:
        return f"{view.status} for {self.stuck_seconds:g} s without a change"


class Tasks(PollDialect):
    name = "tasks"
    _STATES = {"succeeded": "completed"}

    def fetch(self, api: Api, ref: TurnRef) -> Any:
        return api.json("GET", f"/v1/tasks/{ref.id}", what=f"status {ref.id}")

    def view(self, obj: Any) -> PollView:
        status = str(obj.get("status"))
        state = self._STATES.get(status, status)
        if status == "running" and obj.get("cancel_requested_at"):
            state = "cancelling"
        output = obj.get("output") or {}
        return PollView(state, status, str(output.get("text") or ""))

    def extra(self, obj: Any) -> dict[str, Any]:
        return {
            "progress": obj.get("progress"),
            "billing": obj.get("billing"),
            "error": obj.get("error"),
            "cancel_requested_at": obj.get("cancel_requested_at"),
        }

    def cancel(self, api: Api, ref: TurnRef, reason: str | None) -> dict[str, Any]:
        body = {"reason": reason} if reason is not None else None
        response = api.request("POST", f"/v1/tasks/{ref.id}/cancel", what=f"cancel {ref.id}", json=body)
        answer = api.answer(response, f"cancel {ref.label}")
        outcome = "cancelling" if response.status_code == 202 else str(answer.get("status"))
        return cancel_summary(ref, self.name, response.status_code, outcome, answer)


class Omni(PollDialect):
    name = "omni"
    _STATES = {"succeeded": "completed", "canceled": "cancelled"}

    def fetch(self, api: Api, ref: TurnRef) -> Any:
        body = api.json(
            "GET", f"/v1/omni-ai/responses/{ref.id}", what=f"status {ref.id}", params={"account_id": ref.account_id}
        )
        return body.get("data") or {}

    def view(self, obj: Any) -> PollView:
        status = str(obj.get("status"))
        parts = (obj.get("content") or {}).get("parts") or []
        text = "".join(str(p.get("text") or "") for p in parts if isinstance(p, Mapping) and p.get("type") == "text")
        return PollView(self._STATES.get(status, status), status, text)

    def extra(self, obj: Any) -> dict[str, Any]:
        return {"account_id": obj.get("account_id"), "thread_id": obj.get("thread_id"), "error": obj.get("error")}

    def cancel(self, api: Api, ref: TurnRef, reason: str | None) -> dict[str, Any]:
        self._no_reason(reason)
        response = api.request(
            "DELETE", f"/v1/omni-ai/responses/{ref.id}", what=f"cancel {ref.id}", params={"account_id": ref.account_id}
        )
        answer = api.answer(response, f"cancel {ref.label}")
        canceled = bool((answer.get("data") or {}).get("canceled"))
        return cancel_summary(ref, self.name, response.status_code, "canceled" if canceled else "not_canceled", answer)


class Chat(PollDialect):
    """A chat thread: its actions waiting for confirmation, and its messages."""

    name = "chat"
    # A confirmed action is carried out by its confirm request, under a 10 s lease; one that stays
    # confirmed much longer failed, or its confirm died (the thread does not say which: both show
    # `confirmed` until another confirm finishes it). `tail` ends there rather than wait forever.
    stuck_status = "confirmed"
    stuck_seconds = 30.0

    def fetch(self, api: Api, ref: TurnRef) -> Any:
        return api.json("GET", f"/chat/threads/{ref.id}", what=f"status {ref.id}", headers=api.chat_headers())

    def view(self, obj: Any) -> PollView:
        actions = [a for a in obj.get("actions") or [] if isinstance(a, Mapping)]
        messages = [m for m in obj.get("messages") or [] if isinstance(m, Mapping)]
        text = "".join(f"{m.get('role')}: {m.get('content')}\n" for m in messages)
        if any(a.get("status") == "pending" for a in actions):
            return PollView("pending", "pending", text)
        if any(a.get("status") == "confirmed" for a in actions):
            return PollView("running", "confirmed", text)
        last = str(actions[-1].get("status")) if actions else "idle"
        return PollView({"executed": "completed", "idle": "completed"}.get(last, last), last, text)

    def extra(self, obj: Any) -> dict[str, Any]:
        return {"actions": obj.get("actions"), "messages": len(obj.get("messages") or [])}

    def stuck_note(self, view: PollView) -> str:
        return (
            f"the action has been confirmed for {self.stuck_seconds:g} s without being carried out: it failed, or its "
            "confirm died (another /chat/confirm on the thread finishes it)"
        )

    def cancel(self, api: Api, ref: TurnRef, reason: str | None) -> dict[str, Any]:
        self._no_reason(reason)
        response = api.request(
            "POST", "/chat/cancel", what=f"cancel {ref.id}", json={"thread_id": ref.id}, headers=api.chat_headers()
        )
        answer = api.answer(response, f"cancel {ref.label}")
        return cancel_summary(ref, self.name, response.status_code, str(answer.get("status")), answer)


DIALECT: dict[str, Dialect] = {d.name: d for d in (Sessions(), Llm(), Omni(), Tasks(), Chat())}


def resolve(api: Api, ref: TurnRef) -> tuple[Dialect, TurnRef]:
    """The dialect of ``ref``; a ``resp_`` id is an llm response if the llm dialect knows it,
    else a stateless sessions turn."""
    if ref.dialect is not None:
        return DIALECT[ref.dialect], ref
    response = api.request("GET", f"/api/v1/llm/responses/{ref.id}", what=f"look up {ref.id}", allow=(404,))
    dialect = "llm" if response.status_code < 400 else "sessions"
    return DIALECT[dialect], ref.as_dialect(dialect)
