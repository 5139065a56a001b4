"""Identifiers: a prefix and 24 random base-62 characters (about 143 bits)."""

from __future__ import annotations

import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_BODY = 24


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(_BODY))


def pattern(prefix: str) -> re.Pattern[str]:
    """A pattern for ids with this prefix; tolerant of length so foreign ids still parse as 'unknown'."""
    return re.compile(re.escape(prefix) + r"[A-Za-z0-9]{1,64}")


def matches(prefix: str, value: str) -> bool:
    return pattern(prefix).fullmatch(value) is not None


_ANY_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def plausible(value: str) -> bool:
    """Shaped like an id of any dialect (prefixed ids, UUIDs): what may reach a store key."""
    return _ANY_ID.fullmatch(value) is not None
