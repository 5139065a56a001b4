"""Scheduled functions: EventBridge ``rate(...)`` events, run on timers like the cloud would.

Each schedule has a thread that invokes its function with an EventBridge "Scheduled Event"
payload every period (the first run one period after start, as a new rule would).
``TURNSTOP_LOCAL_SCHEDULE_SCALE`` (default 1) divides every period, so a developer can
watch a one-minute sweeper run every few seconds.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from turnstop_local.lambda_host import FunctionHost, Throttled
from turnstop_local.template import ScheduleSource, Template

log = logging.getLogger("turnstop_local.schedules")


def scheduled_event(source: ScheduleSource, region: str, account_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account_id}:rule/{source.function_id}-{source.name}"],
        "detail": {},
    }


def _scale(raw: str) -> float:
    try:
        scale = float(raw) if raw.strip() else 1.0
    except ValueError:
        log.warning("TURNSTOP_LOCAL_SCHEDULE_SCALE=%r is not a number; using 1", raw)
        return 1.0
    return min(max(scale, 1.0), 3600.0)  # at most as fast as one run per second of a 1 h rate


class Schedules:
    def __init__(self, template: Template, host: FunctionHost) -> None:
        self.host = host
        scale = _scale(os.environ.get("TURNSTOP_LOCAL_SCHEDULE_SCALE", ""))
        self.sources = [s for s in template.schedule_sources if s.enabled]
        self.periods = {s: s.period_seconds / scale for s in self.sources}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Schedules:
        for source in self.sources:
            t = threading.Thread(target=self._loop, args=(source,), name=f"schedule-{source.function_id}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _loop(self, source: ScheduleSource) -> None:
        resources = self.host.resources
        while not self._stop.wait(self.periods[source]):
            try:
                function = self.host.get(source.function_id)
                function.invoke(scheduled_event(source, resources.region, resources.account_id))
            except Throttled as throttled:  # EventBridge would retry; locally the next period runs
                log.warning("scheduled run of %s skipped: %s", source.function_id, throttled)
            except Exception:  # a failed run is logged; the next one still happens, as in AWS
                log.exception("scheduled run of %s failed", source.function_id)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
