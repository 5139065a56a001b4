"""A request's Idempotency-Key bound to what it asks for: the key and a fingerprint of the
request (method, path, end user, canonical body). Plain data, no I/O; reading one from a
request is ``idempotency/requests.py``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class KeyBinding:
    tenant: str
    key: str
    fingerprint: str  # hash of method, route and body

    @staticmethod
    def fingerprint_of(*parts: str | bytes) -> str:
        h = hashlib.sha256()
        for p in parts:
            h.update(p.encode() if isinstance(p, str) else p)
            h.update(b"\x00")
        return h.hexdigest()
