"""Cancels that are not a dialect's: bulk cancels of a scope (``bulk``: the page runner),
the operators' ``POST /v1/admin/cancels`` (``admin``), and cancels sent to the queue
(``queue``). Each function imports the one module it serves; nothing is imported here, so
the queue consumer never loads the admin routes and the reverse."""

__all__ = ["admin", "bulk", "queue"]
