"""Idempotency-Keys, in one place. A key is one request per tenant, for 24 h, whatever the route.

    bindings    a request's key bound to what it asks for (``KeyBinding``, its fingerprint)
    requests    reading the key (and its binding) from a request
    keys        the key item ``IDEM#<tenant>#<key>`` / ``IDEM``: bound in a start's own
                transaction, or a ``Tombstone`` met there; what a refused binding means
    tombstones  cancel before start: a cancel by key, before (or after) the start it names
    answers     keys whose first answer is kept and replayed byte for byte (the tasks cancel)
    replay      the one replay rule: the same key and request get back the turn they started

Powertools' idempotency utility keeps a handler's *result* in a record of its own, written
after the handler ran, keyed by the function and a hash of the payload. It fits none of the
three uses: a start must bind its key inside the turn's own transaction (one key, one turn,
atomically) and a streamed answer has no result to keep; a cancel by key is itself one
conditional write of the key's item; and even the tasks cancel's kept answer shares the
``IDEM#<tenant>#<key>`` item with the starts (one key is one request per tenant, whatever the
route), which a per-function record cannot say. So the keys are turnstop's own.
"""

__all__ = ["answers", "bindings", "keys", "replay", "requests", "tombstones"]
