"""The tasks price table and the arithmetic of a task's bill, in exact decimals (never floats).

A task is charged its estimate when it is accepted, in the transaction that creates it, and
refunded when it ends: succeeded → ``charged − earned``; cancelled or failed → everything.
The estimate is the most a task can cost (the prompt's tokens, and the output the prompt asks
for, capped by ``input.max_output_tokens``), so what is earned never exceeds what was charged.
docs/tasks.md shows the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from turnstop.core.turn import Usage

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


def lines(model: str, usage: Usage) -> list[Line]:
    price = PRICES[model]
    return [
        Line("input_tokens", usage.input_tokens, "token", price.input_token * usage.input_tokens),
        Line("output_tokens", usage.output_tokens, "token", price.output_token * usage.output_tokens),
    ]


def cost(model: str, usage: Usage) -> Decimal:
    return sum((line.credits for line in lines(model, usage)), Decimal(0))


def estimate(model: str, input_tokens: int, max_output_tokens: int) -> Decimal:
    """The charge at acceptance: everything the task may use."""
    return cost(model, Usage(input_tokens, max_output_tokens))


def earned(model: str, usage: Usage, charged: Decimal, succeeded: bool) -> Decimal:
    """What a finished task keeps: its usage if it succeeded (never above the charge), else 0."""
    return min(cost(model, usage), charged) if succeeded else Decimal(0)
