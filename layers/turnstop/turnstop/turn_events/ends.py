"""Turn events out: every terminal transition of a turn, as an EventBridge event. This module
says which stream records are ends and what their events say; ``turn_events/sinks.py`` where
they go.

They come from the table's stream (``TurnEventsFunction``), never from the request path, so a
cancel stays one write and a finish one transaction. A stream record whose old image of a turn
head was in flight (``queued``/``running``) and whose new image is terminal becomes one event:

    source        "turnstop"
    detail-type   "turn.cancelled" | "turn.completed" | "turn.failed" | "turn.incomplete"
    detail        {event_id, tenant, turn_id, dialect, kind, scope, status, end_user, account_id,
                   source, reason, actor, batch, cancel_requested_at, cancel_observed_at,
                   cancel_latency_ms, created_at, started_at, finished_at, usage, billed, upstream,
                   error}

Times are RFC 3339 UTC; ``source``/``reason``/``actor`` are the cancel's (``api``, ``queue``,
``admin``, ``deadline``, ``session_delete``...); ``batch`` names the bulk cancel that stopped it.
``event_id`` (``<turn id>.<status>``) is the same on every delivery: delivery is at least once
(a retried stream batch re-sends), so consumers dedupe by it. In AWS the events go to an
EventBridge bus (``TURNSTOP_EVENT_BUS_NAME``); the local runtime appends the same envelopes to
``.turnstop/events.jsonl`` instead (``TURNSTOP_EVENTS_FILE``), one JSON object per line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from turnstop.core.clock import iso
from turnstop.core.turn import Status, Turn
from turnstop.store import codec

SOURCE = "turnstop"
# The statuses in which a finished turn was billed for its output (dialects bill nothing for a
# cancelled or failed turn: core/billing.py, the seeds).
BILLED = frozenset({Status.COMPLETED, Status.INCOMPLETE})


@dataclass(frozen=True)
class TurnEvent:
    turn: Turn
    detail: dict[str, Any]

    @property
    def detail_type(self) -> str:
        return f"turn.{self.turn.stored_status.value}"

    @property
    def time(self) -> datetime:
        at = self.turn.finished_at or self.turn.created_at
        return datetime.fromtimestamp(at / 1000, UTC)

    @property
    def cancel_latency_ms(self) -> int | None:
        value = self.detail.get("cancel_latency_ms")
        return None if value is None else int(value)


def detail(turn: Turn) -> dict[str, Any]:
    requested, observed = turn.cancel_requested_at, turn.cancel_observed_at
    latency = observed - requested if requested is not None and observed is not None else None
    return {
        "event_id": f"{turn.id}.{turn.stored_status.value}",
        "tenant": turn.tenant,
        "turn_id": turn.id,
        "dialect": turn.scope.kind.dialect,
        "kind": turn.kind,
        "scope": str(turn.scope),
        "status": turn.stored_status.value,
        "end_user": turn.end_user,
        "account_id": turn.account_id,
        "source": turn.cancel_source,
        "reason": turn.cancel_reason,
        "actor": turn.cancel_actor,
        "batch": turn.cancel_batch,
        "cancel_requested_at": iso(requested),
        "cancel_observed_at": iso(observed),
        "cancel_latency_ms": latency,
        "created_at": iso(turn.created_at),
        "started_at": iso(turn.started_at),
        "finished_at": iso(turn.finished_at),
        "usage": {**turn.usage.to_item(), "total_tokens": turn.usage.total_tokens},
        "billed": turn.stored_status in BILLED,
        # the model provider's usage and cost: the platform's, whatever the end user was billed
        "upstream": turn.upstream,
        "error": turn.error,
    }


def record_metrics(metrics: Any, event: TurnEvent) -> None:
    """What one published end of a turn counts, in the function's namespace:

    - ``TurnEvents_<status>`` and ``CancelLatency`` (ms from the cancel's request to the
      runtime seeing it), by ``service`` like every metric of the function;
    - ``TurnsEnded`` by ``dialect`` and ``status``; for a cancelled turn ``Cancels`` by
      ``dialect`` and ``source`` (``api``, ``queue``, ``admin``, ``deadline``...) and
      ``CancelLatency`` by ``dialect`` (the dashboard's graphs: docs/observability.md).
    """
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    status, dialect = event.turn.stored_status.value, event.detail["dialect"]
    metrics.add_metric(name=f"TurnEvents_{status}", unit=MetricUnit.Count, value=1)
    latency = event.cancel_latency_ms
    if latency is not None:
        metrics.add_metric(name="CancelLatency", unit=MetricUnit.Milliseconds, value=latency)
    by: list[tuple[str, MetricUnit, float, dict[str, str]]] = [
        ("TurnsEnded", MetricUnit.Count, 1, {"dialect": dialect, "status": status})
    ]
    if event.turn.stored_status is Status.CANCELLED:
        by.append(("Cancels", MetricUnit.Count, 1, {"dialect": dialect, "source": event.detail["source"] or "unknown"}))
        if latency is not None:
            by.append(("CancelLatency", MetricUnit.Milliseconds, latency, {"dialect": dialect}))
    for name, unit, value, dimensions in by:
        with single_metric(name=name, unit=unit, value=value, default_dimensions=dimensions):
            pass


def terminal_event(record: dict[str, Any]) -> TurnEvent | None:
    """The event of a stream record that moves a turn head from in flight to terminal; None
    for every other record (chunks, steps, cancels, index items, TTL deletions...)."""
    change = record.get("dynamodb") or {}
    new = codec.turn_from_item(change.get("NewImage"))
    old = codec.turn_from_item(change.get("OldImage"))
    if new is None or old is None or not new.stored_status.terminal or old.stored_status.terminal:
        return None
    return TurnEvent(new, detail(new))
