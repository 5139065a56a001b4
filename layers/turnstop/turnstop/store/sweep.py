"""Sweeping: finding in-flight turns nothing is moving, through the sparse in-flight index
(``gsi2``: only heads in flight carry ``gsi2pk``; it projects status and creation time, so
a step's commit never writes to it)."""

from __future__ import annotations

from turnstop.core.turn import Status
from turnstop.store import codec
from turnstop.store.codec import TURN_SK, turn_pk
from turnstop.store.db import Dynamo
from turnstop.store.heads import INFLIGHT_PREFIX
from turnstop.store.turns import Turns


class Sweep:
    def __init__(self, db: Dynamo, turns: Turns) -> None:
        self.db = db
        self.turns = turns

    def stale_turns(self, shard: int, queued_for_ms: int) -> list[str]:
        """In-flight turns nobody is moving: queued for longer than ``queued_for_ms`` (their
        message was lost or dead-lettered, or a queued cancel was never recorded) or running
        under an expired lease (their worker died). A running candidate's lease is read
        from its head."""
        now = self.db.now()
        items = self.db.query_all(
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :pk",
            FilterExpression="(status = :queued AND created_at <= :old) OR status = :running",
            ExpressionAttributeValues=codec.values(
                pk=f"{INFLIGHT_PREFIX}{shard}",
                queued=Status.QUEUED.value,
                running=Status.RUNNING.value,
                old=now - queued_for_ms,
            ),
        )
        stale: list[str] = []
        for item in items:
            raw = codec.load(item) or {}
            turn_id = str(raw["pk"]).removeprefix("TURN#")
            if raw.get("status") == Status.RUNNING.value:
                head = self.turns.get(turn_id)
                if head is None or head.stored_status is not Status.RUNNING or not head.lease_expired(now):
                    continue
            stale.append(turn_id)
        return stale

    def mark_swept(self, turn_id: str, again_after_ms: int) -> bool:
        """Record that the sweeper re-sends this turn's message now, unless it did so within
        ``again_after_ms`` or the turn has moved on; so a backlog is not re-sent every run."""
        now = self.db.now()
        new, _ = self.db.conditional(
            "update_item",
            Key=codec.key(turn_pk(turn_id), TURN_SK),
            UpdateExpression="SET swept_at = :now",
            ConditionExpression=(
                "attribute_exists(gsi2pk) AND (attribute_not_exists(swept_at) OR swept_at <= :again)"
                " AND (status = :queued OR (status = :running AND lease_expires_at <= :now))"
            ),
            ExpressionAttributeValues=codec.values(
                now=now, again=now - again_after_ms, queued=Status.QUEUED.value, running=Status.RUNNING.value
            ),
        )
        return new is not None
