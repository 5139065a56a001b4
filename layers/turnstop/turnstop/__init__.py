"""turnstop: the stop button for long-running AI agent turns.

The layer holds everything the functions share: ``core`` (pure domain), ``store`` (the one
DynamoDB/SQS adapter), ``runtime`` (what a running turn uses), ``http`` (resolver, auth, SSE)
and ``dialects`` (each API's wire models and mappings).
"""

__all__ = [
    "auth",
    "cancels",
    "composition",
    "core",
    "dialects",
    "http",
    "idempotency",
    "observability",
    "platform",
    "providers",
    "runtime",
    "store",
    "turn_events",
    "webhooks",
    "worker",
]
