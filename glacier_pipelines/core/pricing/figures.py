"""How amounts, sizes and counts are written in cost lines: as the price list spells them, without float noise."""

from __future__ import annotations

from decimal import Decimal


def dec(value: float | int) -> Decimal:
    """The decimal the TOML spelled: repr() of a float is the shortest string that reads back as it."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def price(value: float) -> str:
    """A price as written in the price list: 0.0025 -> '0.0025', 10.0 -> '10.00', 0.0 -> '0'."""
    d = dec(value)
    if d == 0:
        return "0"
    text = f"{d:f}"
    if "." in text:
        text = text.rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def gb(value: Decimal) -> str:
    """GB with at least 2 and at most 6 decimals, thousands separated: 2.5 -> '2.50', 1/1024 -> '0.000977'."""
    if 0 < value < Decimal("0.0000005"):
        return f"{float(value):.3g}"
    text = f"{value:,.6f}"
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


def num(value: float | Decimal) -> str:
    """A count of days or months without float noise: 1.0 -> '1', 1.5 -> '1.5', 1/3 -> '0.333333'."""
    d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if d == d.to_integral_value():
        return f"{int(d):,}"
    return f"{float(d):.6g}"


def count(value: float | int, unit: str) -> str:
    """'1 object', '2 objects', '1.5 months', '1,000,000 objects'."""
    text = num(value)
    return f"{text} {unit}" if text == "1" else f"{text} {unit}s"
