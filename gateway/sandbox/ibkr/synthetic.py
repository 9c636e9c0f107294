"""SYNTHETIC instruments, used only to give one IBKR sandbox sub-account 250 positions.

They are NOT real listings: symbols ``SYNxxx``, names ending in "(SYNTHETIC)", ISINs in the ``ZZ``
(private-use) country range with a valid check digit, and conids from 990000001 upward (a range
chosen to avoid the real conids of the catalogue). Do not use them outside the sandbox.
"""

from __future__ import annotations

from decimal import Decimal

from ...domain.isin import with_check_digit
from ..instruments import SimInstrument

__all__ = ["SYNTHETIC"]

_SECTORS = ("Industrials", "Utilities", "Materials", "Health Care", "Software", "Banks", "Retail", "Energy")




def _make(n: int) -> SimInstrument:
    symbol = f"SYN{n:03d}"
    price = Decimal(10 + (n * 37) % 290) + Decimal(n % 100) / 100
    return SimInstrument(
        key=symbol, symbol=symbol, isin=with_check_digit(f"ZZ{n:09d}"),
        name=f"SYNTHETIC {_SECTORS[n % len(_SECTORS)].upper()} CO {n:03d} (SYNTHETIC)",
        currency="USD", exchange="XNYS", asset_class="stock", price=price,
        ids={"conid": str(990_000_000 + n), "synthetic": "1"},
    )


SYNTHETIC: tuple[SimInstrument, ...] = tuple(_make(n) for n in range(1, 241))
