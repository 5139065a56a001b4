"""Model routing, configured once: ``TURNSTOP_MODELS``.

The value is inline JSON (it starts with ``{``) or the path of a JSON file::

    {"default": "<route>",
     "routes": {"<name callers send as model>": {
         "provider": "openai-chat" | "bedrock-converse" | "openai-responses" | "scripted" | "external",
         "model": "<upstream id>", "base_url": "...", "api_key_env": "<ENV NAME>",
         "api_key_secret": "<Secrets Manager name>", "region": "...", "endpoint_url": "...",
         "max_output_tokens": N, "price_per_million": {"input": x, "output": y},
         "connect_timeout_s": 10, "first_byte_timeout_s": 300, "idle_timeout_s": 120,
         "retry_budget_s": 10, "queue": "<external worker queue>", "handler": "module:function"}}}

A dialect's own model field (llm ``model``, tasks ``model``) picks the route; the others use
``default``. Unset, the routes are the scripted model's names (offline, as the tests expect).
The document is validated once, at start-up; an error names the bad field and never a key.
Prices are US dollars per million tokens.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from turnstop.providers import registry

ENV = "TURNSTOP_MODELS"
_KNOWN = {
    "provider",
    "model",
    "base_url",
    "api_key_env",
    "api_key_secret",
    "region",
    "endpoint_url",
    "max_output_tokens",
    "price_per_million",
    "connect_timeout_s",
    "first_byte_timeout_s",
    "idle_timeout_s",
    "retry_budget_s",
    "step_ms",
    "description",
    "queue",
    "handler",
    "remote",
    "worker_key_sha256",
}
DEFAULT_MAX_OUTPUT_TOKENS = 4096


class ModelsConfigError(ValueError):
    """``TURNSTOP_MODELS`` does not fit: the message names the field."""


@dataclass(frozen=True)
class Prices:
    """US dollars per million tokens."""

    input: Decimal = Decimal(0)
    output: Decimal = Decimal(0)

    def per_token(self) -> tuple[Decimal, Decimal]:
        million = Decimal(1_000_000)
        return self.input / million, self.output / million


@dataclass(frozen=True)
class Route:
    name: str
    provider: str
    model: str = ""
    base_url: str | None = None
    api_key_env: str | None = None
    api_key_secret: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    prices: Prices = field(default_factory=Prices)
    connect_timeout_s: float = 10.0
    first_byte_timeout_s: float = 300.0  # a reasoning model may think this long in silence
    idle_timeout_s: float = 120.0
    retry_budget_s: float = 10.0  # retries (before the first token only) stop after this long
    step_ms: int | None = None  # the scripted provider's pace (default: TURNSTOP_SCRIPTED_STEP_MS)
    queue: str | None = None  # external: the worker queue its turns go to (docs/agents.md)
    handler: str | None = None  # external: "module:function" served under that queue
    remote: bool = False  # external: served by remote workers through the worker API
    worker_key_sha256: str | None = None  # remote: the SHA-256 (hex) of the workers' key

    def __repr__(self) -> str:  # never a key: there is none here, only where to find it
        return f"Route({self.name!r}, provider={self.provider!r}, model={self.model!r})"


# Today's offline models, priced as the tasks dialect always priced them (0.002 / 0.004
# credits per token at $0.01 a credit).
SCRIPTED_ROUTES: dict[str, Route] = {
    "turnstop:scripted": Route("turnstop:scripted", "scripted", "scripted", prices=Prices(Decimal(20), Decimal(40))),
    "turnstop:scripted-mini": Route(
        "turnstop:scripted-mini", "scripted", "scripted-mini", prices=Prices(Decimal(5), Decimal(10))
    ),
    "meetkai:functionary-urdu-mini-pak": Route("meetkai:functionary-urdu-mini-pak", "scripted", "scripted"),
    "meetkai:functionary-pt": Route("meetkai:functionary-pt", "scripted", "scripted"),
}


@dataclass(frozen=True)
class ModelRoutes:
    default: str
    routes: Mapping[str, Route]
    configured: bool = False  # from TURNSTOP_MODELS (False: the offline defaults)

    def get(self, name: str | None) -> Route | None:
        """The route a caller's model name picks (None: the default route); None if unknown."""
        return self.routes.get(self.default if name is None else name)

    @property
    def default_route(self) -> Route:
        return self.routes[self.default]


DEFAULT_ROUTES = ModelRoutes("turnstop:scripted", SCRIPTED_ROUTES)


def _fail(path: str, message: str) -> ModelsConfigError:
    return ModelsConfigError(f"{ENV}: {path}: {message}")


def _number(path: str, raw: Any, *, integer: bool = False, positive: bool = True) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or (integer and not isinstance(raw, int)):
        raise _fail(path, "must be " + ("an integer" if integer else "a number"))
    if positive and raw <= 0:
        raise _fail(path, "must be greater than 0")
    return raw


def _text(path: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _fail(path, "must be a non-empty string")
    return raw


def _price(path: str, raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _fail(path, "must be a number")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise _fail(path, "must be a number") from None
    if not value.is_finite() or value < 0:
        raise _fail(path, "must be a number >= 0")
    return value


def _route(name: str, raw: Any) -> Route:
    path = f"routes.{name}"
    if not isinstance(raw, dict):
        raise _fail(path, "must be an object")
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", "unknown field")
    provider = raw.get("provider")
    entry = registry.find(provider) if isinstance(provider, str) else None
    if entry is None:
        raise _fail(f"{path}.provider", f"must be one of {', '.join(registry.names())}")
    for needed in entry.required:  # what it needs besides its name (validated at start-up)
        if needed not in raw:
            raise _fail(f"{path}.{needed}", f"is required for provider {provider}")
    values: dict[str, Any] = {}
    for key in ("model", "base_url", "api_key_env", "api_key_secret", "region", "endpoint_url", "queue", "handler"):
        if key in raw:
            values[key] = _text(f"{path}.{key}", raw[key])
    for key in ("base_url", "endpoint_url"):
        if key in values and not values[key].startswith(("http://", "https://")):
            raise _fail(f"{path}.{key}", "must be an http:// or https:// URL")
    if "api_key_env" in values and "api_key_secret" in values:
        raise _fail(f"{path}.api_key_secret", "give api_key_env or api_key_secret, not both")
    if "max_output_tokens" in raw:
        values["max_output_tokens"] = _number(f"{path}.max_output_tokens", raw["max_output_tokens"], integer=True)
    if "step_ms" in raw:
        values["step_ms"] = _number(f"{path}.step_ms", raw["step_ms"], integer=True, positive=False)
    for key in ("connect_timeout_s", "first_byte_timeout_s", "idle_timeout_s"):
        if key in raw:
            values[key] = float(_number(f"{path}.{key}", raw[key]))
    if "retry_budget_s" in raw:
        values["retry_budget_s"] = float(_number(f"{path}.retry_budget_s", raw["retry_budget_s"], positive=False))
    prices = raw.get("price_per_million")
    if prices is not None:
        if not isinstance(prices, dict) or set(prices) - {"input", "output"}:
            raise _fail(f"{path}.price_per_million", 'must be {"input": x, "output": y}')
        values["prices"] = Prices(
            _price(f"{path}.price_per_million.input", prices.get("input", 0)),
            _price(f"{path}.price_per_million.output", prices.get("output", 0)),
        )
    _remote(path, raw, values)
    if "handler" in values and ":" not in values["handler"]:
        raise _fail(f"{path}.handler", 'must be "module:function"')
    if provider == "scripted":
        values.setdefault("model", "scripted")
    if provider == "external":
        values.setdefault("model", f"external:{values['queue']}")
    return Route(name=name, provider=entry.name, **values)


def _remote(path: str, raw: dict[str, Any], values: dict[str, Any]) -> None:
    """``"remote": true``: the queue is served by workers elsewhere, who prove the route's key."""
    if "remote" not in raw:
        return
    if raw["remote"] is not True or raw.get("provider") != "external":
        raise _fail(f"{path}.remote", "must be true, on an external route")
    if "handler" in raw:
        raise _fail(f"{path}.handler", "a remote route has no handler: its workers run elsewhere")
    digest = raw.get("worker_key_sha256")
    if not isinstance(digest, str) or len(digest) != 64 or set(digest) - set("0123456789abcdef"):
        raise _fail(f"{path}.worker_key_sha256", "is required for a remote route: 64 lowercase hex digits")
    values["remote"] = True
    values["worker_key_sha256"] = digest


def parse(document: Any) -> ModelRoutes:
    """Validate a parsed ``TURNSTOP_MODELS`` document."""
    if not isinstance(document, dict):
        raise ModelsConfigError(f"{ENV}: must be a JSON object")
    unknown = sorted(set(document) - {"default", "routes"})
    if unknown:
        raise _fail(unknown[0], "unknown field")
    routes = document.get("routes")
    if not isinstance(routes, dict) or not routes:
        raise _fail("routes", "must be an object with at least one route")
    parsed: dict[str, Route] = {}
    for name, raw in routes.items():
        if not name or len(name) > 200:
            raise _fail("routes", "a route name must be 1 to 200 characters")
        parsed[name] = _route(name, raw)
    default = document.get("default")
    if default is None and len(parsed) == 1:
        default = next(iter(parsed))
    if not isinstance(default, str) or default not in parsed:
        raise _fail("default", "must name one of the routes")
    return ModelRoutes(default, parsed, configured=True)


def load(value: str | None) -> ModelRoutes:
    """``TURNSTOP_MODELS``'s value (inline JSON or a file's path) as routes; unset: the offline defaults."""
    if value is None or not value.strip():
        return DEFAULT_ROUTES
    text = value.strip()
    if not text.startswith("{"):
        try:
            with open(os.path.expanduser(text), encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ModelsConfigError(f"{ENV}: cannot read the file it names ({e.strerror})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelsConfigError(f"{ENV}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    return parse(document)


@lru_cache(maxsize=4)
def routes_for(value: str | None) -> ModelRoutes:
    """``load``, once per distinct value (every function parses it once per cold start)."""
    return load(value)
