"""Custom scalars: ``Decimal`` as a string-serialised decimal (never a float)."""

from __future__ import annotations

import decimal
from typing import NewType

import strawberry

__all__ = ["DECIMAL_SCALAR", "Decimal", "ScaledDecimal"]

#: the GraphQL type name used in annotations; mapped to its definition in ``scalar_map``
Decimal = NewType("Decimal", decimal.Decimal)


class ScaledDecimal(decimal.Decimal):
    """A decimal whose exponent is part of its meaning (money at its currency's scale): serialised
    with every digit (``70488.00``), where a plain ``Decimal`` that is integral loses its zeros."""

    __slots__ = ()


def _parse(value: object) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("Decimal must be given as a string (or an integer), never a float")
    try:
        parsed = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not parsed.is_finite():
        raise ValueError("Decimal must be finite")
    return parsed


def _serialize(value: decimal.Decimal) -> str:
    if isinstance(value, ScaledDecimal):
        return format(value, "f")
    text = format(value.normalize() if value == value.to_integral_value() else value, "f")
    return text


DECIMAL_SCALAR = strawberry.scalar(
    name="Decimal",
    description="A decimal number serialised as a string, e.g. \"12.3400\"; money and quantities are never floats.",
    serialize=_serialize,
    parse_value=_parse,
)
