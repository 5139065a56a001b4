"""Idempotency-Keys, in one place. A key is one request per tenant, for 24 h, whatever the route.

    claims      a request's key bound to what it asks for (``IdempotencyClaim``, its fingerprint)
    requests    reading the key (and the claim) from a request
    keys        the key item ``IDEM#<tenant>#<key>`` / ``IDEM``: bound in a start's own
                transaction, or a ``Tombstone`` met there; what a refused binding means
    tombstones  cancel before start: a cancel by key, before (or after) the start it names
    answers     keys whose first answer is kept and replayed byte for byte (the tasks cancel)
    replay      the one replay rule: the same key and request get back the turn they started

Powertools' idempotency utility keeps a handler's *result* in an item of its own, written
after the handler ran. That fits the tasks cancel's kept answers in shape, but not a start:
the key must be bound inside the turn's own transaction (one key, one turn, atomically), and a
streamed answer has no result to keep. So the keys are turnstop's own (docs/architecture.md).
"""

__all__ = ["answers", "claims", "keys", "replay", "requests", "tombstones"]
