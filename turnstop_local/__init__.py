"""Docker-free local runtime for turnstop.

Reads ``template.yaml`` (the single source of truth for routes, handlers, layers, environment,
authorizer, table and queues) and serves the same handler code on ``http://127.0.0.1:3000``:
API Gateway HTTP API payload 2.0 events, incremental SSE streaming, and SQS event-source-mapping
semantics, backed by DynamoDB Local (Java 17+) or moto.

Entry point: ``python -m turnstop_local --help``.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
