"""Event filter patterns (EventBridge's syntax), as Lambda's event-source mappings apply them.

Nested keys, and per key a list of accepted values or rules: ``prefix``, ``anything-but``,
``exists``, ``numeric``. A pattern using anything else is refused when the template is read,
rather than filtering wrongly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from turnstop_local.template import TemplateError

__all__ = ["check_pattern", "matches"]

_OPERATORS = {"prefix", "anything-but", "exists", "numeric"}


def check_pattern(pattern: Any, where: str) -> None:
    """Refuse what :func:`matches` does not implement, rather than filter wrongly."""
    if isinstance(pattern, dict):
        for value in pattern.values():
            check_pattern(value, where)
    elif isinstance(pattern, list):
        for rule in pattern:
            if isinstance(rule, dict) and not set(rule) <= _OPERATORS:
                raise TemplateError(
                    f"{where}: filter operators {sorted(set(rule) - _OPERATORS)} are not supported locally"
                )
    else:
        raise TemplateError(f"{where}: a filter pattern's leaves are lists of values or rules")


def _rule_matches(rule: Any, value: Any, present: bool) -> bool:
    if not isinstance(rule, dict):
        return present and value == rule
    if "exists" in rule:
        return present is bool(rule["exists"])
    if not present:
        return False
    if "prefix" in rule:
        return isinstance(value, str) and value.startswith(rule["prefix"])
    if "anything-but" in rule:
        excluded = rule["anything-but"]
        return value not in (excluded if isinstance(excluded, list) else [excluded])
    numeric = rule["numeric"]
    checks = {"=": float.__eq__, "<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return all(checks[op](number, float(arg)) for op, arg in zip(numeric[::2], numeric[1::2], strict=True))


def matches(pattern: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Whether a record matches an event filter pattern (EventBridge's syntax: nested keys, a
    list of accepted values or rules - ``prefix``, ``anything-but``, ``exists``, ``numeric``)."""
    for key, expected in pattern.items():
        present = isinstance(record, Mapping) and key in record
        value = record.get(key) if present else None
        if isinstance(expected, dict):
            if not isinstance(value, Mapping) or not matches(expected, value):
                return False
        elif not any(_rule_matches(rule, value, present) for rule in expected):
            return False
    return True
