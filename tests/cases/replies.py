"""An HTTP answer as the dialect test harnesses see it; each dialect adds its error shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class HttpReply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


def header(headers: dict[str, str], name: str) -> str | None:
    """A header's value whatever the case of its name (Lambda answers keep the handler's case)."""
    return {k.lower(): v for k, v in headers.items()}.get(name.lower())
