"""ISIN validation (ISO 6166): two letters, nine alphanumerics, one Luhn check digit."""

from __future__ import annotations

import re

__all__ = ["is_valid_isin", "with_check_digit"]

_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")


def with_check_digit(body: str) -> str:
    """``body`` (the first 11 characters of an ISIN) followed by its check digit."""
    digits = "".join(str(int(ch, 36)) for ch in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return body + str((10 - total % 10) % 10)


def is_valid_isin(value: str) -> bool:
    """True when ``value`` is a well-formed ISIN whose check digit is right."""
    return bool(_ISIN.match(value)) and with_check_digit(value[:-1]) == value
