"""The tasks dialect (seed 003): async tasks charged on acceptance, with progress, a
best-effort cancel with a reason, refunds and signed callbacks. See docs/tasks.md.

A task is a turn (kind ``task``, scope ``tasks``): ``handlers`` (routes), ``models`` (request
parsing), ``wire`` (the seed's error shape and the task object), ``pricing`` (the price table),
``renderer`` (events, the refund, the callback outbox), ``service`` (the operations) and
``callbacks`` (signed delivery, run by its own queue-driven function).
"""

__all__ = ["callbacks", "answers", "cancel", "handlers", "models", "pricing", "renderer", "service", "wire"]
