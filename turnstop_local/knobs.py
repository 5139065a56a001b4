"""The local runtime's own settings (``TURNSTOP_LOCAL_*`` environment variables).

A bad value never stops the runtime: it is logged and the default is used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

__all__ = ["CONCURRENCY", "IDLE_TIMEOUT_SECONDS", "number_setting"]

log = logging.getLogger("turnstop_local")

# The concurrency limit of a function without ReservedConcurrentExecutions (default 64).
CONCURRENCY = "TURNSTOP_LOCAL_CONCURRENCY"
# How long a connection may stay silent while the server waits for a request (default 60 s).
IDLE_TIMEOUT_SECONDS = "TURNSTOP_LOCAL_IDLE_TIMEOUT_SECONDS"


def number_setting(
    name: str, default: float, *, minimum: float, maximum: float, environ: Mapping[str, str] | None = None
) -> float:
    """``$name`` as a number within [minimum, maximum]; ``default`` when unset or not a number."""
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        log.warning("%s=%r is not a number; using %s", name, raw, default)
        return default
    if value != value:  # NaN
        log.warning("%s=%r is not a number; using %s", name, raw, default)
        return default
    return min(max(value, minimum), maximum)
