"""The one token-counting rule every dialect bills by: whitespace-separated words.

The scripted model streams one word per step, so a turn's output tokens are its words; a
prompt's input tokens are counted the same way, in every dialect.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\s*\S+\s*")


def count_tokens(text: str) -> int:
    return len(text.split())


def first_tokens(text: str, n: int) -> str:
    """The first ``n`` tokens of ``text`` (as count_tokens counts them), with their spacing."""
    if count_tokens(text) <= n:
        return text
    return "".join(m.group(0) for _, m in zip(range(n), _TOKEN.finditer(text), strict=False))
