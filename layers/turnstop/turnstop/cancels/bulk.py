"""Scoped bulk cancels: stop every in-flight turn of a tenant (an account, a session, a thread,
an end user) with one message on the cancel queue or one ``POST /v1/admin/cancels``.

The turns are found in the live index (``store/live.py``: a Query of the tenant's in-flight
turns, whatever else the table holds) a page at a time, and each gets the same single
conditional cancel write as a single cancel, ``cancel_batch`` naming this bulk cancel, a few
at a time in parallel. A page's turns are fixed the first time it is read, and its counts are
added to the report once (``store/bulk.py``), so a page processed again (a redelivered
message, a duplicate) re-sends its harmless cancels but never counts twice. The next page
goes out as its own queue message only from the run that counted this one (or from a
redelivery of the message, which may have died before sending it): one message never runs
past a Lambda's time limit, however large the scope.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from turnstop.core import errors
from turnstop.core.bulk import FAILED, BulkRequest, Counts, classify, parse_request
from turnstop.core.clock import iso
from turnstop.core.turn import CancelRequest
from turnstop.observability import logkeys
from turnstop.platform.settings import Settings
from turnstop.store import Store
from turnstop.store.bulk import Report
from turnstop.store.live import Cursor

log = logging.getLogger(__name__)

ATTEMPTS = 4  # a turn's cancel write is tried this often (throttling) before it counts as failed
Send = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Page:
    """One page of a bulk cancel: the work of one queue message."""

    bulk_id: str
    number: int
    request: BulkRequest
    source: str
    after: Cursor | None = None

    def message(self) -> dict[str, Any]:
        """The cancel-queue message that runs this page."""
        after = None if self.after is None else self.after.to_json()
        return {
            **self.request.to_json(),
            "page": {"id": self.bulk_id, "number": self.number, "source": self.source, "after": after},
        }

    @classmethod
    def from_message(cls, body: dict[str, Any]) -> Page | None:
        """The page a message continues, or None for a new bulk cancel. Raises InvalidRequest."""
        raw = body.get("page")
        if raw is None:
            return None
        rest = {k: v for k, v in body.items() if k != "page"}
        try:
            return cls(
                str(raw["id"]),
                int(raw["number"]),
                parse_request(rest),
                str(raw["source"]),
                Cursor.from_json(raw.get("after")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise errors.InvalidRequest(f"Invalid field 'page': {e}") from None


@dataclass(frozen=True)
class PageDone:
    counts: Counts
    following: Page | None  # the next page (None: this was the last)
    counted: bool  # this run added the page's counts (False: an earlier run did)


def sqs_sender(url: str | None) -> Send:
    """Send continuation pages to the cancel queue."""

    def send(message: dict[str, Any]) -> None:
        if not url:
            raise RuntimeError("no cancel queue configured (TURNSTOP_CANCEL_QUEUE_URL)")
        from turnstop.store.codec import compact_json
        from turnstop.store.db import client

        client("sqs").send_message(QueueUrl=url, MessageBody=compact_json(message))

    return send


class BulkCancel:
    def __init__(
        self, store: Store, settings: Settings, send: Send | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.store = store
        self.settings = settings
        self.send = send or sqs_sender(settings.cancel_queue_url)
        self.sleep = sleep

    def open(self, bulk_id: str, request: BulkRequest, source: str) -> tuple[Report, Page]:
        """The report (created, or found again) and the first page."""
        report = self.store.bulk.open(bulk_id, request, source)
        return report, Page(bulk_id, 1, report.request, report.source)

    def run_page(self, page: Page) -> PageDone:
        scope = page.request.scope
        logkeys.bind(tenant=scope.tenant, cancel_source=page.source)  # each turn's are its cancel's own

        def read() -> tuple[list[str], Cursor | None]:
            return self.store.live.page(
                scope,
                created_before=page.request.created_before,
                after=page.after,
                limit=self.settings.bulk_cancel_page_size,
            )

        ids, following = self.store.bulk.page(page.bulk_id, page.number, read)
        counts = self._cancel_all(page, ids)
        counted = self.store.bulk.count(page.bulk_id, page.number, counts, last=following is None)
        nxt = None if following is None else Page(page.bulk_id, page.number + 1, page.request, page.source, following)
        return PageDone(counts, nxt, counted)

    def hand_on(self, done: PageDone, *, redelivered: bool) -> None:
        """Queue the next page: from the run that counted this one, or from a redelivery (the
        first run may have died between counting and sending). A duplicate of a page that was
        counted already sends nothing, so a chain never forks."""
        if done.following is not None and (done.counted or redelivered):
            self.send(done.following.message())

    def _cancel_all(self, page: Page, ids: list[str]) -> Counts:
        counts = Counts()
        if not ids:
            return counts
        with ThreadPoolExecutor(max_workers=min(self.settings.bulk_cancel_concurrency, len(ids))) as pool:
            for turn_id, category in zip(ids, pool.map(lambda t: self._cancel_one(page, t), ids), strict=True):
                counts.add(turn_id, category)
        return counts

    def _cancel_one(self, page: Page, turn_id: str) -> str:
        request, scope = page.request, page.request.scope
        req = CancelRequest(reason=request.reason, actor=request.actor, source=page.source, batch=page.bulk_id)
        for attempt in range(ATTEMPTS):
            try:
                outcome, turn = self.store.turns.request_cancel(
                    turn_id, tenant=scope.tenant, end_user=scope.end_user, req=req
                )
                return classify(outcome, turn, page.bulk_id)
            except errors.Retryable:
                self.sleep(0.05 * 2**attempt)
            except Exception:  # one turn's surprise must not stop the others; it is counted
                log.exception("bulk cancel %s: cancelling %s failed", page.bulk_id, turn_id)
                break
        return FAILED


def report_json(report: Report) -> dict[str, Any]:
    """A bulk cancel's report as the admin endpoint answers it."""
    return {
        "id": report.id,
        "object": "bulk_cancel",
        "status": report.status,
        **report.request.to_json(),
        "source": report.source,
        **report.counts,
        "pages": report.pages,
        "created_at": iso(report.created_at),
        "completed_at": iso(report.completed_at),
    }
