"""A bulk cancel's report and pages: ``BULK#<id>`` / ``REPORT`` and ``BULK#<id>`` / ``PAGE#<n>``.

- The report is opened once (put if absent; a redelivered first message finds it) and counts
  each page once: adding a page's counts is conditional on the page number not being in the
  report's ``counted`` set, so a page processed twice never counts twice.
- A page item fixes which turns page ``n`` holds, and where the next page starts, the first
  time it is read from the live index (put if absent): a page processed again meets the same
  turns, even if some have finished and left the index meanwhile, and so counts them the same.
Both expire a day after they were opened (read compares ``expires_at``; TTL cleans up).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from turnstop.core.bulk import BulkRequest, Counts, parse_request
from turnstop.store import codec
from turnstop.store.db import Dynamo
from turnstop.store.live import Cursor

REPORT_SK = "REPORT"
KEEP_MS = 24 * 3600 * 1000
RUNNING, COMPLETED = "running", "completed"


def bulk_pk(bulk_id: str) -> str:
    return f"BULK#{bulk_id}"


def page_sk(number: int) -> str:
    return f"PAGE#{number:06d}"


@dataclass(frozen=True)
class Report:
    id: str
    request: BulkRequest
    source: str
    created_at: int
    expires_at: int
    status: str = RUNNING
    counts: dict[str, int] = field(default_factory=lambda: Counts().to_json())
    pages: int = 0
    completed_at: int | None = None

    @property
    def tenant(self) -> str:
        return self.request.scope.tenant


def report_from(raw: dict[str, Any] | None) -> Report | None:
    if not raw or raw.get("sk") != REPORT_SK:
        return None
    return Report(
        id=str(raw["id"]),
        request=parse_request(json.loads(raw["request"])),
        source=str(raw["source"]),
        created_at=int(raw["created_at"]),
        expires_at=int(raw["expires_at"]),
        status=str(raw.get("status", RUNNING)),
        counts={k: int(raw.get(k, 0)) for k in Counts().to_json()},
        pages=len(raw.get("counted") or []),
        completed_at=raw.get("completed_at"),
    )


class BulkReports:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    def open(self, bulk_id: str, request: BulkRequest, source: str) -> Report:
        """The report, created now or found (the same id opened again: a redelivered message)."""
        now = self.db.now()
        item = {
            "pk": bulk_pk(bulk_id),
            "sk": REPORT_SK,
            "id": bulk_id,
            "tenant": request.scope.tenant,
            "request": codec.compact_json(request.to_json()),
            "source": source,
            "status": RUNNING,
            "created_at": now,
            "expires_at": now + KEEP_MS,
            "ttl": self.db.ttl(now + KEEP_MS),
            **Counts().to_json(),
        }
        written, old = self.db.conditional(
            "put_item", Item=codec.dump(item), ConditionExpression="attribute_not_exists(pk)"
        )
        report = report_from(item if written is not None else codec.load(old))
        assert report is not None
        return report

    def get(self, bulk_id: str) -> Report | None:
        report = report_from(self.db.get(bulk_pk(bulk_id), REPORT_SK))
        return None if report is None or report.expires_at <= self.db.now() else report

    def page(
        self, bulk_id: str, number: int, read: Callable[[], tuple[list[str], Cursor | None]]
    ) -> tuple[list[str], Cursor | None]:
        """Page ``number``'s turns and the next page's start: as first read (``read``), kept."""
        ids, following = read()
        now = self.db.now()
        item = {
            "pk": bulk_pk(bulk_id),
            "sk": page_sk(number),
            "ids": ids,
            "next": None if following is None else codec.compact_json(following.to_json()),
            "ttl": self.db.ttl(now + KEEP_MS),
        }
        written, old = self.db.conditional(
            "put_item", Item=codec.dump(item), ConditionExpression="attribute_not_exists(pk)"
        )
        if written is not None:
            return ids, following
        kept = codec.load(old) or {}
        nxt = kept.get("next")
        return [str(i) for i in kept.get("ids") or []], None if nxt is None else Cursor.from_json(json.loads(nxt))

    def count(self, bulk_id: str, number: int, counts: Counts, *, last: bool) -> bool:
        """Add a page's counts once (False: this page was counted before); the last page
        completes the report."""
        now = self.db.now()
        sets = "updated_at = :now" + (", status = :done, completed_at = :now" if last else "")
        values: dict[str, Any] = {"now": now, "page": {number}, "n": number, **counts.to_json()}
        if last:
            values["done"] = COMPLETED
        written, _ = self.db.conditional(
            "update_item",
            Key=codec.key(bulk_pk(bulk_id), REPORT_SK),
            UpdateExpression=(
                f"SET {sets} ADD counted :page, matched :matched, cancelled :cancelled,"
                " already_finished :already_finished, failed :failed"
            ),
            ConditionExpression="attribute_exists(pk) AND NOT contains(counted, :n)",
            ExpressionAttributeValues=codec.values(**values),
        )
        return written is not None
