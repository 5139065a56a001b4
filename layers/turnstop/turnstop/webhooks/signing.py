"""The webhook signature (the scheme Stripe made familiar)::

Turnstop-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_TOLERANCE_S = 300


def sign(secret: str, body: bytes, at_s: int) -> str:
    """The ``Turnstop-Signature`` header value for ``body`` sent at ``at_s`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{at_s}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at_s},v1={mac}"


def verify(secret: str, body: bytes, header: str, now_s: int, tolerance_s: int = SIGNATURE_TOLERANCE_S) -> bool:
    """What a receiver does: recompute the HMAC over ``"<t>.<raw body>"``, compare in constant
    time, and refuse timestamps too far from now (replays)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        at = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now_s - at) > tolerance_s:
        return False
    expected = sign(secret, body, at).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))
