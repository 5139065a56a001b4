"""The three designs the benchmark compares, each running one turn of a timed model with one
live reader, on the same store.

- ``naive``: what a team writes first. Before each step the model's thread reads the head
  (GetItem, strongly consistent) for the cancel flag, then writes the step's event
  (PutItem); readers poll the events every 50 ms. The head holds the request.
- ``per_step``: turnstop's previous design. Each step is one TransactWriteItems (the event
  and the head that publishes it; the head's condition is the cancel check); readers poll
  the head every 50 ms and read the events up to its seq. The head holds the request.
- ``default``: the runtime as it ships (``turnstop.runtime``): the turn runs in the request,
  its reader gets events from memory, a keeper publishes coalesced chunks and reads the flag
  on a cadence.

The baselines are written here, with the same table, items and renderer vocabulary, so the
comparison is of designs, not of code paths that no longer exist in the layer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from turnstop.core import scopes
from turnstop.core.events import Event
from turnstop.core.ids import new_id
from turnstop.core.records import NewTurn
from turnstop.core.turn import CancelRequest, Turn
from turnstop.dialects.sessions.renderer import RENDERERS, STATELESS_KIND, created_event
from turnstop.providers.base import Chunk
from turnstop.runtime.keeper import Cadence
from turnstop.runtime.runner import TurnRunner
from turnstop.store import Store, codec

READER_POLL_S = 0.05  # how often the baselines' readers poll (the previous default)
TENANT = "bench"


class TimedModel:
    """``tokens`` words at ``rate`` per second (sleeping between words), recording when each
    word was produced; optionally silent for ``silence_s`` after word ``silence_at``."""

    def __init__(self, tokens: int, rate: float, silence_at: int | None = None, silence_s: float = 0.0) -> None:
        self.tokens, self.step_s = tokens, 1.0 / rate
        self.silence_at, self.silence_s = silence_at, silence_s
        self.produced: list[float] = []
        self.stop = threading.Event()  # a baseline tells its model to stop here

    def stream(self, prompt: str = "") -> Iterator[Chunk]:
        start = time.perf_counter()
        for i in range(self.tokens):
            due = (
                start
                + i * self.step_s
                + (self.silence_s if self.silence_at is not None and i >= self.silence_at else 0)
            )
            wait = due - time.perf_counter()
            if wait > 0 and self.stop.wait(wait):
                return
            if self.stop.is_set():
                return
            self.produced.append(time.perf_counter())
            yield Chunk("word " if i < self.tokens - 1 else "word")

    @property
    def seconds(self) -> float:
        """The model's own time: what the turn would take if nothing slowed it."""
        return (self.tokens - 1) * self.step_s + self.silence_s


@dataclass
class Run:
    """One turn of one design: when each token reached the reader, and when it ended."""

    received: list[float] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    terminal: str = ""
    turn_id: str = ""


class Design:
    name = ""

    def __init__(self, store: Store, prompt: str) -> None:
        self.store = store
        self.prompt = prompt
        self.turn_id = ""  # set as soon as the turn exists

    def run(self, model: TimedModel, on_token: Callable[[int], None] | None = None) -> Run:
        """Run one turn; ``on_token(i)`` is called as the reader receives token ``i``."""
        raise NotImplementedError

    def cancel(self, turn_id: str) -> None:
        self.store.turns.request_cancel(turn_id, tenant=TENANT, req=CancelRequest(source="bench"))

    def _new(self) -> NewTurn:
        return NewTurn(
            id=new_id("resp_"),
            kind=STATELESS_KIND,
            tenant=TENANT,
            scope=scopes.STATELESS,
            grace_ms=120_000,
            input={"prompt": self.prompt},
        )


class Default(Design):
    name = "default"

    def __init__(self, store: Store, prompt: str, cadence: Cadence | None = None) -> None:
        super().__init__(store, prompt)
        self.cadence = cadence or Cadence()

    def run(self, model: TimedModel, on_token: Callable[[int], None] | None = None) -> Run:
        runner = TurnRunner(
            self.store, lambda t: model, renderers=RENDERERS, lease_ms=self.cadence.lease_ms, cadence=self.cadence
        )
        out = Run(started=time.perf_counter())
        turn = self.store.turns.start(self._new(), created_event, run_as=runner.owner, lease_ms=runner.lease_ms)
        out.turn_id = self.turn_id = turn.id
        channel, thread = runner.start(turn)
        tokens = 0
        while True:
            item = channel.get(timeout=30)
            if not isinstance(item, list):
                break
            for ev in item:
                if ev.type.endswith(".delta"):
                    out.received.append(time.perf_counter())
                    if on_token:
                        on_token(tokens)
                    tokens += 1
                elif ev.type != "response.created":
                    out.terminal, out.ended = ev.type, time.perf_counter()
        thread.join()
        return out


class _Polled(Design):
    """A baseline: the model's thread writes per step; the reader polls the store."""

    def run(self, model: TimedModel, on_token: Callable[[int], None] | None = None) -> Run:
        out = Run(started=time.perf_counter())
        turn = self._start()
        out.turn_id = self.turn_id = turn.id
        writer = threading.Thread(target=self._write, args=(turn, model), daemon=True)
        writer.start()
        self._read(turn, out, on_token, writer)
        writer.join()
        return out

    def _start(self) -> Turn:
        """The head holds the request (as both baselines store it), then the first event."""
        now = self.store.now()
        new = self._new()
        head = {
            "pk": f"TURN#{new.id}",
            "sk": "TURN",
            "id": new.id,
            "kind": new.kind,
            "tenant": TENANT,
            "scope": str(new.scope),
            "status": "running",
            "created_at": now,
            "started_at": now,
            "seq": 1,
            "grace_ms": 120_000,
            "lease_owner": "bench",
            "lease_expires_at": now + 30_000,
            "input": codec.compact_json(new.input),
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        turn = codec.turn_from_item(head)
        assert turn is not None
        first = created_event(turn)
        self._call(
            "transact_write_items",
            TransactItems=[
                {"Put": {"TableName": self.store.table, "Item": codec.dump(head)}},
                {
                    "Put": {
                        "TableName": self.store.table,
                        "Item": codec.dump(self._event_item(turn.id, 1, first.type, first.data)),
                    }
                },
            ],
        )
        return turn

    def _event_item(self, turn_id: str, seq: int, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"pk": f"TURN#{turn_id}", "sk": f"EV#{seq:012d}", "type": type_, "data": codec.compact_json(data)}

    def _call(self, op: str, **kw: Any) -> Any:
        if op == "transact_write_items":  # names are aliased per item, as the store does
            kw["TransactItems"] = [{k: codec.alias_names(v) for k, v in it.items()} for it in kw["TransactItems"]]
        return getattr(self.store.db.ddb, op)(**codec.alias_names(kw))

    def _write(self, turn: Turn, model: TimedModel) -> None:
        raise NotImplementedError

    def _finish(self, turn: Turn, seq: int, cancelled: bool, tokens: int) -> None:
        name = "response.cancelled" if cancelled else "response.completed"
        data = {"id": turn.id, "status": name.split(".")[1], "usage": {"output_tokens": tokens}}
        self._call(
            "transact_write_items",
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.store.table,
                        "Item": codec.dump(self._event_item(turn.id, seq + 1, name, data)),
                    }
                },
                {
                    "Update": {
                        "TableName": self.store.table,
                        "Key": codec.key(f"TURN#{turn.id}", "TURN"),
                        "UpdateExpression": "SET seq = :seq, status = :status",
                        "ExpressionAttributeValues": codec.values(seq=seq + 1, status=name.split(".")[1]),
                    }
                },
            ],
        )

    def _read(self, turn: Turn, out: Run, on_token: Callable[[int], None] | None, writer: threading.Thread) -> None:
        """Poll every 50 ms for new events until the terminal one."""
        cursor, tokens = 1, 0
        while True:
            if not writer.is_alive() and not out.terminal:
                ended = self._poll(turn.id, cursor)
                if not any(not e.type.endswith(".delta") for e in ended):
                    raise RuntimeError(f"the {self.name} writer died before the end of {turn.id}")
            for ev in self._poll(turn.id, cursor):
                cursor = ev.seq
                if ev.type == "response.delta":
                    out.received.append(time.perf_counter())
                    if on_token:
                        on_token(tokens)
                    tokens += 1
                else:
                    out.terminal, out.ended = ev.type, time.perf_counter()
                    return
            time.sleep(READER_POLL_S)

    def _poll(self, turn_id: str, after: int) -> list[Event]:
        raise NotImplementedError

    def _events_after(self, turn_id: str, after: int, upto: int | None = None) -> list[Event]:
        hi = upto if upto is not None else 10**12 - 1
        vals = {"pk": f"TURN#{turn_id}", "lo": f"EV#{after + 1:012d}", "hi": f"EV#{hi:012d}"}
        page = self._call(
            "query",
            TableName=self.store.table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues=codec.values(**vals),
            ConsistentRead=True,
        )
        out = []
        for item in page.get("Items", []):
            raw = codec.load(item) or {}
            out.append(Event(int(str(raw["sk"])[3:]), str(raw["type"]), json.loads(raw["data"])))
        return out


class Naive(_Polled):
    name = "naive"

    def _write(self, turn: Turn, model: TimedModel) -> None:
        seq, tokens, cancelled = 1, 0, False
        for chunk in model.stream():
            head = self._call(
                "get_item", TableName=self.store.table, Key=codec.key(f"TURN#{turn.id}", "TURN"), ConsistentRead=True
            )["Item"]
            if "cancel_requested_at" in head:
                cancelled = True
                break
            seq, tokens = seq + 1, tokens + 1
            item = self._event_item(turn.id, seq, "response.delta", {"id": turn.id, "delta": chunk.text})
            self._call("put_item", TableName=self.store.table, Item=codec.dump(item))
        model.stop.set()
        self._finish(turn, seq, cancelled, tokens)

    def _poll(self, turn_id: str, after: int) -> list[Event]:
        return self._events_after(turn_id, after)


class PerStep(_Polled):
    name = "per_step"

    def _write(self, turn: Turn, model: TimedModel) -> None:
        from botocore.exceptions import ClientError

        seq, tokens, cancelled = 1, 0, False
        for chunk in model.stream():
            item = self._event_item(turn.id, seq + 1, "response.delta", {"id": turn.id, "delta": chunk.text})
            try:
                self._call(
                    "transact_write_items",
                    TransactItems=[
                        {"Put": {"TableName": self.store.table, "Item": codec.dump(item)}},
                        {
                            "Update": {
                                "TableName": self.store.table,
                                "Key": codec.key(f"TURN#{turn.id}", "TURN"),
                                "UpdateExpression": "SET seq = :seq, usage = :usage, lease_expires_at = :lease",
                                "ConditionExpression": "attribute_not_exists(cancel_requested_at) AND seq = :base",
                                "ExpressionAttributeValues": codec.values(
                                    seq=seq + 1,
                                    base=seq,
                                    lease=self.store.now() + 30_000,
                                    usage={"input_tokens": 0, "output_tokens": tokens + 1},
                                ),
                            }
                        },
                    ],
                )
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                cancelled = True
                break
            seq, tokens = seq + 1, tokens + 1
        model.stop.set()
        self._finish(turn, seq, cancelled, tokens)

    def _poll(self, turn_id: str, after: int) -> list[Event]:
        head = self._call(
            "get_item", TableName=self.store.table, Key=codec.key(f"TURN#{turn_id}", "TURN"), ConsistentRead=True
        )["Item"]
        seq = int(head["seq"]["N"])
        return self._events_after(turn_id, after, seq) if seq > after else []


DESIGNS: dict[str, type[Design]] = {"naive": Naive, "per_step": PerStep, "default": Default}
