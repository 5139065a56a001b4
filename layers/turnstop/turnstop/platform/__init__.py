"""What a function's process starts from: its settings, parsed once at cold start from
``TURNSTOP_<FIELD>`` (``settings``), and the SnapStart hooks of the synchronous cancel
functions (``snapstart``). Nothing is imported here: importing ``snapstart`` registers its
hooks."""

__all__ = ["settings", "snapstart"]
