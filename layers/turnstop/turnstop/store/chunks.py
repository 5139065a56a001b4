"""Event chunks: a turn's durable event buffer, written coalesced.

Events are stored in chunk items ``TURN#<id>`` / ``EV#<last seq>``: consecutive events
``first..last`` as zlib-compressed compact JSON (``[[type, data], ...]``), with the writer's
id. A chunk is visible once the head's committed ``seq`` reaches its last seq; a chunk
written beyond it (a flush refused by a cancel, a lost worker's late write) is invisible and
harmless. Readers query ``EV#<after+1> .. EV#<seq>``; where chunks overlap, the one with the
higher key wins for each seq. That is always the finishing chunk: it is written at the
head's final seq without a condition (its head update is the guard), while every other
writer puts its chunks only if absent, so a lost worker's late write can neither replace the
finishing chunk nor, sorting before it, override its events.

A finished turn's closing events may repeat the whole output (the llm's response object
does, five times over); when it is long, the stored copy holds a reference instead
(``{"$turnstop": "output_text"}``) and readers put the output back, so a long answer never
meets DynamoDB's 400 KB item limit.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from typing import Any

from turnstop.core.events import Event
from turnstop.store.codec import ev_sk, turn_pk

OUTPUT_REF = {"$turnstop": "output_text"}
# Outputs at least this long are stored by reference in closing events.
OUTPUT_REF_MIN_CHARS = 1024


def chunk_item(turn_id: str, events: list[Event], owner: str, ttl: int, refs: bool = False) -> dict[str, Any]:
    """The plain item of consecutive events (``codec.dump`` turns it into DynamoDB's form)."""
    first, last = events[0].seq, events[-1].seq
    assert [e.seq for e in events] == list(range(first, last + 1)), "a chunk holds consecutive events"
    raw = json.dumps([[e.type, e.data] for e in events], separators=(",", ":"), ensure_ascii=False)
    return {
        "pk": turn_pk(turn_id),
        "sk": ev_sk(last),
        "first": first,
        "owner": owner,
        "ev": zlib.compress(raw.encode(), 6),
        "refs": refs or None,  # holds output references (see by_reference)
        "ttl": ttl,
    }


def events_of(raw: dict[str, Any]) -> list[Event]:
    first = int(raw["first"])
    blob = raw["ev"]
    payload = json.loads(zlib.decompress(bytes(blob.value if hasattr(blob, "value") else blob)))
    return [Event(first + i, t, d) for i, (t, d) in enumerate(payload)]


def chunk_bytes(events: Iterable[Event]) -> int:
    """About what events weigh uncompressed (to decide when a flush is due)."""
    return sum(len(e.type) + len(json.dumps(e.data, separators=(",", ":"), ensure_ascii=False)) for e in events)


def by_reference(events: list[Event], output: str) -> list[Event]:
    """Closing events as stored: every string equal to a long ``output`` becomes a reference."""
    if len(output) < OUTPUT_REF_MIN_CHARS:
        return events
    return [Event(e.seq, e.type, _swap(e.data, output)) for e in events]


def holds_references(raw: dict[str, Any]) -> bool:
    return bool(raw.get("refs"))


def resolve(event: Event, output: str) -> Event:
    """A stored event with its output references filled in."""
    return Event(event.seq, event.type, _fill(event.data, output))


def _swap(value: Any, output: str) -> Any:
    if isinstance(value, str) and value == output:
        return dict(OUTPUT_REF)
    if isinstance(value, dict):
        return {k: _swap(v, output) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, output) for v in value]
    return value


def _fill(value: Any, output: str) -> Any:
    if value == OUTPUT_REF:
        return output
    if isinstance(value, dict):
        return {k: _fill(v, output) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, output) for v in value]
    return value
