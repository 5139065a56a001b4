"""The sessions dialect's error shape (the seed shows none; this is the documented choice):
``{"error": {"type": "<code>", "message": "...", "request_id": "..."}}``."""

from __future__ import annotations

from typing import Any


def error_body(status: int, code: str, message: str, request_id: str) -> dict[str, Any]:
    return {"error": {"type": code, "message": message, "request_id": request_id}}
