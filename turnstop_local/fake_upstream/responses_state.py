"""One response of the fake Responses API: its events, its state, and the thread generating it.

Generation runs on its own thread, apart from any connection, as OpenAI's background mode does:
a reader that leaves does not stop it (the create request's record counts the tokens generated
after its stream left while no other reader was attached, ``tokens_after_disconnect``); only ``cancel`` does, at once (the thread
waits on a condition variable the cancel notifies). A response created without ``background``
stops when its stream's reader leaves, as a plain streaming request does.

The events, numbered by ``sequence_number`` from 0: ``response.created`` (``queued`` in
background mode), ``response.in_progress``; for thinking a ``reasoning`` output item (its
summary streamed as ``response.reasoning_summary_*`` events when the request asks for
``reasoning.summary``, otherwise the tokens pass silently and count as reasoning tokens); the
``message`` item with ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta`` per token, ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done``; then ``response.completed``,
``response.incomplete`` (``max_output_tokens``) or ``response.failed``. A cancelled response
emits nothing more; its readers' streams end.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from turnstop_local.fake_upstream.behaviour import Behaviour, Fail, Plan
from turnstop_local.fake_upstream.records import RequestRecord

TERMINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")
FINAL_STATUSES = ("completed", "incomplete", "failed", "cancelled")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"


class FakeResponse:
    """A response and its numbered events; every change notifies ``cond``."""

    def __init__(
        self,
        body: dict[str, Any],
        behaviour: Behaviour,
        plan: Plan,
        failure: Fail | None,
        record: RequestRecord,
        stopping: threading.Event,
    ) -> None:
        self.id = new_id("resp")
        self.body = body
        self.model: str = body["model"]
        self.background = bool(body.get("background"))
        self.behaviour = behaviour
        self.plan = plan
        self.failure = failure
        self.record = record
        self.stopping = stopping
        self.cond = threading.Condition()
        self.events: list[dict[str, Any]] = []
        self.status = "queued" if self.background else "in_progress"
        self.created_at = int(time.time())
        self.thinking = ""
        self.text = ""
        self.generated = 0
        self.token_times: list[float] = []  # when each token was generated (monotonic)
        self.stopped_at: float | None = None  # the generating thread ended (finished, cancelled, stopped)
        self.error: dict[str, Any] | None = None
        self.drop_creator_at: int | None = None  # close_after: drop the creating stream before this event
        self.wakers: list[Callable[[], None]] = []
        self.reasoning_id = new_id("rs")
        self.message_id = new_id("msg")
        self.summary = bool((body.get("reasoning") or {}).get("summary"))
        self._reasoning_state: str | None = None  # None, "in_progress", "completed"
        self._message_state: str | None = None

    # -- state ------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def publish(self, kind: str, **fields: Any) -> None:
        with self.cond:
            self.events.append({"type": kind, "sequence_number": len(self.events), **fields})
            self.cond.notify_all()
        self.wake()

    def wake(self) -> None:
        for waker in list(self.wakers):
            waker()

    def cancel(self) -> bool:
        """Stop generating now. False if the response had already ended (not cancellable)."""
        with self.cond:
            if self.status == "cancelled":
                return True
            if self.finished:
                return False
            self.status = "cancelled"
            self.cond.notify_all()
        self.wake()
        return True

    def wait(self, predicate: Callable[[FakeResponse], bool], timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), timeout)

    def wait_stopped(self, timeout: float = 5.0) -> bool:
        return self.wait(lambda r: r.stopped_at is not None, timeout)

    def _sleep(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (None: until cancelled); False once cancelled or the server stops."""
        deadline = None if seconds is None else time.monotonic() + seconds
        with self.cond:
            while self.status != "cancelled" and not self.stopping.is_set():
                remaining = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
                if remaining <= 0:
                    return True
                self.cond.wait(remaining)
        return False

    # -- the response object ----------------------------------------------------------------

    def usage(self) -> dict[str, Any]:
        thinking = min(self.generated, len(self.plan.thinking))
        return {
            "input_tokens": self.plan.input_tokens,
            "input_tokens_details": {"cached_tokens": self.plan.cached_tokens},
            "output_tokens": self.generated,
            "output_tokens_details": {"reasoning_tokens": thinking},
            "total_tokens": self.plan.input_tokens + self.generated,
        }

    def reasoning_item(self) -> dict[str, Any]:
        summary = (
            [{"type": "summary_text", "text": self.thinking}]
            if self.summary and self._reasoning_state == "completed"
            else []
        )
        return {"id": self.reasoning_id, "type": "reasoning", "summary": summary}

    def output_text(self) -> dict[str, Any]:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": self.text}

    def message_item(self, status: str | None = None) -> dict[str, Any]:
        state = status or ("in_progress" if self._message_state == "in_progress" else "completed")
        content = [self.output_text()] if self._message_state else []
        return {"id": self.message_id, "type": "message", "status": state, "content": content, "role": "assistant"}

    def snapshot(self) -> dict[str, Any]:
        with self.cond:
            body, ended = self.body, self.finished or self.status == "cancelled"
            output = []
            if self._reasoning_state:
                output.append(self.reasoning_item())
            if self._message_state:
                truncated = self.status == "incomplete"
                output.append(self.message_item("incomplete" if truncated else None))
            return {
                "id": self.id,
                "object": "response",
                "created_at": self.created_at,
                "status": self.status,
                "background": self.background,
                "error": self.error,
                "incomplete_details": {"reason": "max_output_tokens"} if self.status == "incomplete" else None,
                "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"),
                "max_tool_calls": None,
                "model": self.model,
                "output": output,
                "parallel_tool_calls": True,
                "previous_response_id": body.get("previous_response_id"),
                "reasoning": {
                    "effort": (body.get("reasoning") or {}).get("effort"),
                    "summary": (body.get("reasoning") or {}).get("summary"),
                },
                "service_tier": "default",
                "store": body.get("store", True),
                "temperature": body.get("temperature", 1.0),
                "text": {"format": {"type": "text"}, "verbosity": "medium"},
                "tool_choice": "auto",
                "tools": [],
                "top_logprobs": 0,
                "top_p": body.get("top_p", 1.0),
                "truncation": "disabled",
                "usage": self.usage() if ended else None,
                "user": None,
                "metadata": body.get("metadata") or {},
            }

    # -- generation -------------------------------------------------------------------------

    def start(self) -> None:
        self.publish("response.created", response=self.snapshot())
        threading.Thread(target=self._run, name=f"fake-{self.id}", daemon=True).start()

    def _run(self) -> None:
        try:
            self._generate()
        finally:
            with self.cond:
                self.stopped_at = time.monotonic()
                self.cond.notify_all()

    def _generate(self) -> None:
        behaviour = self.behaviour
        with self.cond:
            self.status = "in_progress"
        self.publish("response.in_progress", response=self.snapshot())
        if behaviour.first_token_delay_s and not self._sleep(behaviour.first_token_delay_s):
            return
        interval = 1.0 / behaviour.tokens_per_second if behaviour.tokens_per_second > 0 else 0.0
        started = time.monotonic()
        tokens = self.plan.tokens
        for index, (kind, piece) in enumerate(tokens):
            if not self._before_token(index):
                return
            if not self._sleep(max(0.0, started + index * interval - time.monotonic())):
                return
            if not self._token(kind, piece):
                return
        if not self._before_token(len(tokens)):
            return
        self._close_items()
        self._end("incomplete" if self.plan.truncated else "completed")

    def _before_token(self, index: int) -> bool:
        """The behaviour's scripted events at token ``index``; False when generation ends."""
        behaviour = self.behaviour
        if index == behaviour.close_after:
            with self.cond:
                self.drop_creator_at = len(self.events)
                self.cond.notify_all()
            self.wake()
        if index == behaviour.stall_after:
            self._sleep(None)
            return False
        if index == behaviour.fail_after or (index == len(self.plan.tokens) and (behaviour.fail_after or -1) > index):
            failure = self.failure or Fail()
            self.error = {
                "code": "server_error",
                "message": failure.message or "The model failed to generate a response.",
            }
            self._end("failed")
            return False
        return True

    def _token(self, kind: str, piece: str) -> bool:
        """Generate one token (publish its delta); False if the response was cancelled first."""
        with self.cond:
            if self.status == "cancelled" or self.stopping.is_set():
                return False
            if kind == "thinking":
                if self._reasoning_state is None:
                    self._open_reasoning()
                self.thinking += piece
                if self.summary:
                    self.publish(
                        "response.reasoning_summary_text.delta",
                        item_id=self.reasoning_id,
                        output_index=0,
                        summary_index=0,
                        delta=piece,
                        obfuscation="",
                    )
            else:
                if self._message_state is None:
                    self._close_reasoning()
                    self._open_message()
                self.text += piece
                self.publish(
                    "response.output_text.delta",
                    item_id=self.message_id,
                    output_index=self._message_index(),
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                    obfuscation="",
                )
            self.generated += 1
            self.token_times.append(time.monotonic())
            unread = self.record.disconnected_at is not None and not self.wakers
        if unread:
            self.record.update(tokens_after_disconnect=self.record.tokens_after_disconnect + 1)
        return True

    def _message_index(self) -> int:
        return 1 if self._reasoning_state else 0

    def _open_reasoning(self) -> None:
        self._reasoning_state = "in_progress"
        self.publish("response.output_item.added", output_index=0, item={**self.reasoning_item()})
        if self.summary:
            part = {"type": "summary_text", "text": ""}
            self.publish(
                "response.reasoning_summary_part.added",
                item_id=self.reasoning_id,
                output_index=0,
                summary_index=0,
                part=part,
            )

    def _close_reasoning(self) -> None:
        if self._reasoning_state != "in_progress":
            return
        if self.summary:
            ids = {"item_id": self.reasoning_id, "output_index": 0, "summary_index": 0}
            self.publish("response.reasoning_summary_text.done", **ids, text=self.thinking)
            self.publish(
                "response.reasoning_summary_part.done", **ids, part={"type": "summary_text", "text": self.thinking}
            )
        self._reasoning_state = "completed"
        self.publish("response.output_item.done", output_index=0, item=self.reasoning_item())

    def _open_message(self) -> None:
        self._message_state = "in_progress"
        index = self._message_index()
        self.publish("response.output_item.added", output_index=index, item=self.message_item("in_progress"))
        self.publish(
            "response.content_part.added",
            item_id=self.message_id,
            output_index=index,
            content_index=0,
            part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
        )

    def _close_items(self) -> None:
        self._close_reasoning()
        if self._message_state != "in_progress":
            return
        ids = {"item_id": self.message_id, "output_index": self._message_index(), "content_index": 0}
        self.publish("response.output_text.done", **ids, text=self.text, logprobs=[])
        self.publish("response.content_part.done", **ids, part=self.output_text())
        self._message_state = "completed"
        status = "incomplete" if self.plan.truncated else "completed"
        self.publish("response.output_item.done", output_index=ids["output_index"], item=self.message_item(status))

    def _end(self, status: str) -> None:
        with self.cond:
            if self.status == "cancelled":
                return
            self.status = status
        self.publish(f"response.{status}", response=self.snapshot())
