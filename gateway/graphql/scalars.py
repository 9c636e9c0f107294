"""Custom scalars: ``Decimal`` as a string-serialised decimal (never a float)."""

from __future__ import annotations

import decimal
from typing import NewType

import strawberry

__all__ = ["DECIMAL_SCALAR", "MAX_DIGITS", "MAX_EXPONENT", "Decimal", "ScaledDecimal"]

#: the GraphQL type name used in annotations; mapped to its definition in ``scalar_map``
Decimal = NewType("Decimal", decimal.Decimal)


class ScaledDecimal(decimal.Decimal):
    """A decimal whose exponent is part of its meaning (money at its currency's scale): serialised
    with every digit (``70488.00``), where a plain ``Decimal`` that is integral loses its zeros."""

    __slots__ = ()


#: bounds of a ``Decimal`` input: significant digits, and the power of ten of its first and last digit
MAX_DIGITS = 30
MAX_EXPONENT = 30
_MAX_TEXT = 100  # characters, before any parsing


def _parse(value: object) -> decimal.Decimal:
    """A ``Decimal`` input: a string (or an integer) of at most ``MAX_DIGITS`` significant digits whose
    digits lie within 10^±``MAX_EXPONENT`` (``"1e1000000"``, ``"1e-40"`` and 31-digit values are refused
    with a ``ValueError``, which the schema answers as ``BAD_USER_INPUT``). Bounded so that no input can
    make an adapter compute for long (an integer conversion of ``1e1000000`` takes minutes)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("Decimal must be given as a string (or an integer), never a float")
    if isinstance(value, int):
        if not -(10 ** MAX_EXPONENT) < value < 10 ** MAX_EXPONENT:
            raise ValueError(f"Decimal must be below 10^{MAX_EXPONENT} in magnitude")
        return decimal.Decimal(value)
    text = value.strip()
    if len(text) > _MAX_TEXT:
        raise ValueError(f"Decimal must be at most {_MAX_TEXT} characters")
    try:
        parsed = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number") from None
    if not parsed.is_finite():
        raise ValueError("Decimal must be finite")
    sign, digits, exponent = parsed.as_tuple()
    assert isinstance(exponent, int)
    significant = len("".join(map(str, digits)).rstrip("0"))
    if significant > MAX_DIGITS:
        raise ValueError(f"Decimal must have at most {MAX_DIGITS} significant digits")
    if parsed.adjusted() >= MAX_EXPONENT or exponent < -MAX_EXPONENT:
        raise ValueError(f"Decimal must lie within 10^-{MAX_EXPONENT} and 10^{MAX_EXPONENT}")
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
