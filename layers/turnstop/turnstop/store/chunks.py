"""Event chunks: a turn's durable event buffer, written coalesced.

Events are stored in chunk items ``TURN#<id>`` / ``EV#<last seq>``: consecutive events
``first..last`` as zlib-compressed compact JSON (``[[type, data], ...]``), with the writer's
id. A chunk is visible once the head's committed ``seq`` reaches its last seq; a chunk
written beyond it (a flush refused by a cancel, a lost worker's late write) is invisible and
harmless. Readers query ``EV#<after+1> .. EV#<seq>``; where chunks overlap, the one with the
higher key wins for each seq. That is always the finishing chunk: it is written at the
head's final seq without a condition (its head update is the guard), while every other
writer puts its chunks only if absent, so a lost worker's late write can neither replace the
finishing chunk nor, sorting before it, override its events. (A finish writes several chunks
only under its own lease, when no other writer can exist; a lost worker's turn is ended with
one closing event, one chunk.)

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
# A chunk holds at most this much uncompressed (DynamoDB's item limit is 400 KB, compressed).
MAX_CHUNK_BYTES = 256 * 1024
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


def split(events: list[Event], limit: int = MAX_CHUNK_BYTES) -> list[list[Event]]:
    """Consecutive events in parts of at most ``limit`` bytes each (an event larger than that
    is a part of its own: the runtime cuts model output into pieces well below it)."""
    parts: list[list[Event]] = [[]]
    size = 0
    for e in events:
        weight = chunk_bytes([e])
        if parts[-1] and size + weight > limit:
            parts.append([])
            size = 0
        parts[-1].append(e)
        size += weight
    return [p for p in parts if p]


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
