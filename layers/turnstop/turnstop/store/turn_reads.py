"""Reading turns: the head (what readers poll), the head with its request, and the committed
events (from the chunks up to the head's seq, output references filled in)."""

from __future__ import annotations

from turnstop.core.events import Event, committed_text
from turnstop.core.scopes import Scope
from turnstop.core.turn import Status, Turn
from turnstop.store import chunks, codec
from turnstop.store.codec import INPUT_SK, TURN_SK, ev_sk, turn_pk
from turnstop.store.db import Dynamo

# What a cancel check reads of the head.
CHECKED = (
    "status, seq, lease_owner, cancel_requested_at, cancel_seq, cancel_reason, cancel_source, cancel_actor,"
    " cancel_batch"
)


class TurnReads:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    def get(self, turn_id: str) -> Turn | None:
        """The turn with its request: the head and the INPUT item in one Query."""
        items = self.db.query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :input AND :head",
            ExpressionAttributeValues=codec.values(pk=turn_pk(turn_id), input=INPUT_SK, head=TURN_SK),
            ConsistentRead=True,
        )
        raws = {str(r.get("sk")): r for r in (codec.load(i) or {} for i in items)}
        return codec.turn_from_item(raws.get(TURN_SK), codec.input_of(raws.get(INPUT_SK)))

    def head(self, turn_id: str) -> Turn | None:
        """The head alone (no request): what readers poll."""
        return codec.turn_from_item(self.db.get(turn_pk(turn_id), TURN_SK))

    def with_input(self, turn: Turn) -> Turn:
        """The same turn with its request read (one GetItem of the INPUT item)."""
        return turn.replace(input=codec.input_of(self.db.get(turn_pk(turn.id), INPUT_SK)))

    def get_visible(
        self,
        turn_id: str,
        *,
        tenant: str,
        kinds: tuple[str, ...] | None = None,
        scope: Scope | None = None,
        end_user: str | None = None,
    ) -> Turn | None:
        """The turn if this caller may see it now: its kind, tenant, scope and end user match
        and it is inside its grace window. Anything else is None, so callers answer not found
        without telling unknown, foreign and expired ids apart."""
        turn = self.get(turn_id)
        if (
            turn is None
            or (kinds is not None and turn.kind not in kinds)
            or not turn.visible_to(tenant, scope, end_user)
            or turn.expired(self.db.now())
        ):
            return None
        return turn

    def read_events(self, turn_id: str, after: int, upto: int, *, resolve: bool = True) -> list[Event]:
        """Committed events with after < seq <= upto, in order (``upto``: the head's seq, or
        less). Output references in closing events are filled in unless ``resolve`` is off."""
        if upto <= after:
            return []
        items = self.db.query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues=codec.values(pk=turn_pk(turn_id), lo=ev_sk(after + 1), hi=ev_sk(upto)),
            ConsistentRead=True,
        )
        by_seq: dict[int, Event] = {}
        referring: dict[int, int] = {}  # seq of an event holding a reference -> its chunk's last seq
        for item in items:  # ascending keys: a later (higher) chunk wins where chunks overlap
            raw = codec.load(item) or {}
            for event in chunks.events_of(raw):
                by_seq[event.seq] = event
                if chunks.holds_references(raw):
                    referring[event.seq] = int(str(raw["sk"])[3:])
                else:
                    referring.pop(event.seq, None)
        out = [by_seq[s] for s in sorted(by_seq) if after < s <= upto]
        if not resolve or not referring:
            return out
        return [self._resolved(turn_id, e, referring[e.seq]) if e.seq in referring else e for e in out]

    def _resolved(self, turn_id: str, event: Event, chunk_last: int) -> Event:
        """A closing event with the turn's output put back: every delta before it. They may be
        in the same chunk as the event (keyed by its last seq), so read up to that key."""
        before = [e for e in self.read_events(turn_id, 0, chunk_last, resolve=False) if e.seq < event.seq]
        return chunks.resolve(event, committed_text(before))

    def committed_text(self, turn: Turn) -> str:
        """The visible output committed so far (nothing before a worker started it)."""
        if turn.stored_status is Status.QUEUED or turn.seq <= 1:
            return ""
        return committed_text(self.read_events(turn.id, 1, turn.seq))

    def cancel_flag(self, turn_id: str, *, consistent: bool) -> Turn | None:
        """The cheapest look at a running turn: its head, projected to what a cancel check
        needs (one read unit or half, whatever the head holds). None when it is not flagged."""
        out = self.db.call(
            "get_item",
            TableName=self.db.table,
            Key=codec.key(turn_pk(turn_id), TURN_SK),
            ConsistentRead=consistent,
            ProjectionExpression=CHECKED,
        )
        raw = codec.load(out.get("Item")) or {}
        if "cancel_requested_at" not in raw:
            return None
        return Turn(
            id=turn_id,
            kind="",
            tenant="",
            scope=Scope.parse("stateless"),
            stored_status=Status(raw["status"]),
            created_at=0,
            seq=int(raw.get("seq", 0)),
            cancel_requested_at=raw["cancel_requested_at"],
            cancel_reason=raw.get("cancel_reason"),
            cancel_actor=raw.get("cancel_actor"),
            cancel_source=raw.get("cancel_source"),
            cancel_seq=raw.get("cancel_seq"),
            lease_owner=raw.get("lease_owner"),
            cancel_batch=raw.get("cancel_batch"),
        )
