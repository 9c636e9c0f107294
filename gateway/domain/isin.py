"""ISIN validation (ISO 6166): two letters, nine alphanumerics, one Luhn check digit."""

from __future__ import annotations

import re

__all__ = ["is_valid_isin"]

_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")


def is_valid_isin(value: str) -> bool:
    """True when ``value`` is a well-formed ISIN whose check digit is right."""
    if not _ISIN.match(value):
        return False
    digits = "".join(str(int(ch, 36)) for ch in value[:-1])
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return (10 - total % 10) % 10 == int(value[-1])
