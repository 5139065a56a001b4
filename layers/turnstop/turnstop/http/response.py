"""What a streaming route answers: status and headers at once, then the body as it comes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamingResponse:
    """What a stream handler returns: status and headers at once, then the body as it comes."""

    status_code: int
    headers: dict[str, str]
    body: Any = field(default_factory=list)
