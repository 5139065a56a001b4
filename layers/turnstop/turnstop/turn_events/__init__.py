"""Turn events out, by job: which stream records end a turn and what their events say
(``ends``), and where they are published (``sinks``)."""

from turnstop.turn_events.ends import BILLED, SOURCE, TurnEvent, detail, record_metrics, terminal_event
from turnstop.turn_events.sinks import PUT_EVENTS_MAX, EventBridgeSink, FileSink, Sink

__all__ = [
    "BILLED",
    "PUT_EVENTS_MAX",
    "SOURCE",
    "EventBridgeSink",
    "FileSink",
    "Sink",
    "TurnEvent",
    "detail",
    "record_metrics",
    "terminal_event",
]
