"""Rate windows: ``RATE#<subject>#<window start>`` / ``RATE``, one counter per subject per
fixed window, counted with one conditional write per request."""

from __future__ import annotations

from dataclasses import dataclass

from turnstop.store import codec
from turnstop.store.db import Dynamo

RATE_SK = "RATE"


@dataclass(frozen=True)
class RateCount:
    allowed: bool
    count: int  # requests counted in this window (the refused one not included)
    limit: int
    window_ends_at: int  # epoch ms


class Rates:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    def hit(self, subject: str, limit: int, window_ms: int = 60_000) -> RateCount:
        """Count one request in the current window, unless ``limit`` are counted already: one
        ``ADD`` conditioned on the count, so concurrent requests can never pass the limit
        together and the ``limit + 1``-th in a window is always the first refused."""
        now = self.db.now()
        start = now - now % window_ms
        end = start + window_ms
        new, old = self.db.conditional(
            "update_item",
            Key=codec.key(f"RATE#{subject}#{start}", RATE_SK),
            UpdateExpression="ADD n :one SET ttl = :ttl",
            ConditionExpression="attribute_not_exists(n) OR n < :limit",
            ExpressionAttributeValues=codec.values(one=1, limit=limit, ttl=self.db.ttl(end, 60)),
            ReturnValues="UPDATED_NEW",
        )
        if new is not None:
            return RateCount(True, int((codec.load({"n": new["n"]}) or {})["n"]), limit, end)
        seen = int((codec.load(old) or {}).get("n", limit))
        return RateCount(False, seen, limit, end)
