"""Route matching the way API Gateway HTTP APIs do it.

A full match before ``{proxy+}``, literal segments before ``{param}`` (from the left), an exact
method before ``ANY``, then ``$default``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from turnstop_local.template import Route

__all__ = ["RouteTable"]

_LITERAL, _PARAM, _GREEDY = 0, 1, 2


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    segments: tuple[str, ...]
    kinds: tuple[int, ...]

    @property
    def rank(self) -> tuple[Any, ...]:
        # Smaller ranks first: a full match before a greedy one, then literal segments before
        # parameters from the left, then an exact method before ANY.
        return (_GREEDY in self.kinds, self.kinds, self.route.method == "ANY")


def _split_path(path: str) -> list[str]:
    return path.split("/")[1:] if path.startswith("/") else path.split("/")


def _segment_kind(segment: str) -> int:
    if segment.startswith("{") and segment.endswith("+}"):
        return _GREEDY
    return _PARAM if segment.startswith("{") else _LITERAL


class RouteTable:
    """Matches (method, path) to a route the way API Gateway HTTP APIs do."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.default: Route | None = None
        compiled: list[_CompiledRoute] = []
        for route in routes:
            if route.path == "$default":
                self.default = route
                continue
            segments = tuple(_split_path(route.path))
            compiled.append(_CompiledRoute(route, segments, tuple(_segment_kind(s) for s in segments)))
        self._routes = sorted(compiled, key=lambda c: c.rank)

    @property
    def routes(self) -> list[Route]:
        return [c.route for c in self._routes] + ([self.default] if self.default else [])

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The route that serves the request and its path parameters, or None (404)."""
        method = method.upper()
        parts = _split_path(raw_path)
        for candidate in self._routes:
            if candidate.route.method not in (method, "ANY"):
                continue
            params = _match_segments(candidate, parts)
            if params is not None:
                return candidate.route, params
        if self.default is not None:
            return self.default, {}
        return None


def _match_segments(candidate: _CompiledRoute, parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for index, (segment, kind) in enumerate(zip(candidate.segments, candidate.kinds, strict=True)):
        if kind == _GREEDY:
            rest = "/".join(parts[index:])
            if not rest:
                return None
            params[segment[1:-2]] = unquote(rest)
            return params
        if index >= len(parts):
            return None
        if kind == _PARAM:
            if not parts[index]:
                return None
            params[segment[1:-1]] = unquote(parts[index])
        elif parts[index] != segment:
            return None
    return params if len(parts) == len(candidate.segments) else None
