"""What a function's process is built from: its settings, parsed once at cold start from
``TURNSTOP_<FIELD>`` (``settings``), the SnapStart hooks of the synchronous cancel functions
(``snapstart``), and the composition root where every function builds its turn runner
(``composition``). Nothing is imported here: importing ``snapstart`` registers its hooks, and
``composition`` loads the runtime, which a cancel function never needs."""

__all__ = ["composition", "settings", "snapstart"]
