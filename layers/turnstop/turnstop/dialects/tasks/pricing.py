"""The tasks price table and the arithmetic of a task's bill, in exact decimals (never floats).

A task is charged its estimate when it is accepted, in the transaction that creates it, and
refunded when it ends: succeeded → ``charged − earned``; cancelled or failed → everything.
The estimate is the most a task can cost (the prompt's tokens, and the output it may produce:
for the scripted model what the prompt asks for, for a real model the route's output cap, both
capped by ``input.max_output_tokens``); what is earned (the provider's reported usage at the
route's prices) never exceeds what was charged. Prices come from the task's route
(``TURNSTOP_MODELS``' ``price_per_million``, US dollars) and are stored with the task.
docs/tasks.md shows the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from turnstop.core.turn import Turn, Usage
from turnstop.providers.config import ModelRoutes, Route

CAPABILITIES: dict[str, tuple[str, ...]] = {"text.generate": ("turnstop:scripted", "turnstop:scripted-mini")}
AUTO = "auto"
AUTO_MODEL = {"text.generate": "turnstop:scripted"}
USD_PER_CREDIT = Decimal("0.01")


@dataclass(frozen=True)
class Price:
    """Credits per token."""

    input_token: Decimal
    output_token: Decimal


PRICES = {
    "turnstop:scripted": Price(Decimal("0.002"), Decimal("0.004")),
    "turnstop:scripted-mini": Price(Decimal("0.0005"), Decimal("0.001")),
}


def amount(value: Decimal) -> str:
    """An exact decimal string: no exponent, no trailing zeros ("0.048", "12", "0")."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def usd(credits: Decimal) -> Decimal:
    return credits * USD_PER_CREDIT


@dataclass(frozen=True)
class Line:
    meter: str
    quantity: int
    unit: str
    credits: Decimal  # what this meter would bill for its quantity


def route_price(route: Route) -> Price:
    """A route's prices (US dollars per million tokens) in credits per token."""
    per_in, per_out = route.prices.per_token()
    return Price(per_in / USD_PER_CREDIT, per_out / USD_PER_CREDIT)


def supported_models(routes: ModelRoutes, capability: str) -> tuple[str, ...]:
    """The models a capability offers: the scripted ones unconfigured, else every route."""
    if not routes.configured:
        return CAPABILITIES.get(capability, ())
    return tuple(routes.routes) if capability in CAPABILITIES else ()


def auto_model(routes: ModelRoutes, capability: str) -> str:
    return routes.default if routes.configured else AUTO_MODEL[capability]


def price_of(turn: Turn) -> Price:
    """The prices a task was accepted at (stored with it), so a price change never re-bills it."""
    stored = turn.input.get("price_credits")
    if stored:
        return Price(Decimal(stored["input_token"]), Decimal(stored["output_token"]))
    return PRICES[str(turn.input["resolved_model"])]


def price_item(price: Price) -> dict[str, str]:
    return {"input_token": amount(price.input_token), "output_token": amount(price.output_token)}


def lines(price: Price, usage: Usage) -> list[Line]:
    return [
        Line("input_tokens", usage.input_tokens, "token", price.input_token * usage.input_tokens),
        Line("output_tokens", usage.output_tokens, "token", price.output_token * usage.output_tokens),
    ]


def cost(price: Price, usage: Usage) -> Decimal:
    return sum((line.credits for line in lines(price, usage)), Decimal(0))


def estimate(price: Price, input_tokens: int, max_output_tokens: int) -> Decimal:
    """The charge at acceptance: everything the task may use."""
    return cost(price, Usage(input_tokens, max_output_tokens))


def earned(price: Price, usage: Usage, charged: Decimal, succeeded: bool) -> Decimal:
    """What a finished task keeps: its usage if it succeeded (never above the charge), else 0."""
    return min(cost(price, usage), charged) if succeeded else Decimal(0)
