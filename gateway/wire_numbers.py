"""Numbers in brokers' answers, bounded like the gateway's own ``Decimal`` inputs.

Brokers' JSON is decoded with :func:`wire_decimal` for its non-integer numbers (``parse_float``) and
:func:`loads` wraps ``json.loads`` with it: a number of more than ``MAX_WIRE_CHARS`` characters or
whose exponent lies beyond 10^±``MAX_WIRE_EXPONENT`` (``1e1000000``: an adapter's integer conversion
of it would take minutes), and JSON nested deeper than Python's recursion limit, are a ``ValueError``
— the HTTP client reports it as ``BadResponse`` (``BROKER_UNAVAILABLE``), never a stalled event loop
or an ``INTERNAL`` error.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["MAX_WIRE_CHARS", "MAX_WIRE_EXPONENT", "loads", "wire_decimal"]

MAX_WIRE_CHARS = 64
MAX_WIRE_EXPONENT = 40


def wire_decimal(text: str) -> Decimal:
    """A broker's JSON number as a ``Decimal``; ``ValueError`` beyond the bounds (module docstring)."""
    if len(text) > MAX_WIRE_CHARS:
        raise ValueError(f"a number of {len(text)} characters in a broker's answer")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not value.is_finite() or not -MAX_WIRE_EXPONENT <= value.adjusted() <= MAX_WIRE_EXPONENT:
        raise ValueError("a number out of range in a broker's answer")
    return value


def _json_decimal(text: str) -> Decimal:
    """:func:`wire_decimal` for the JSON decoder, which hands over only well-formed numbers: one of
    fewer than 20 characters without an exponent is within every bound by its length (at most 19
    digits either side of the point), so it is converted at once."""
    if len(text) < 20 and "e" not in text and "E" not in text:
        return Decimal(text)
    return wire_decimal(text)


def loads(text: str | bytes) -> Any:
    """``json.loads`` with :func:`wire_decimal` for non-integer numbers; every failure a ``ValueError``."""
    try:
        return json.loads(text, parse_float=_json_decimal)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
