"""ISIN → ticker for one lemon connection, from lemon's market-data API.

lemon's trading API names instruments by ISIN and ``isin_title`` only. The ticker (``symbol``) and
the instrument type live in the market-data resource ``GET instruments?isin=A,B``
(``https://data.lemon.markets/v1/``; see :func:`.client.data_url`). Each ISIN is looked up once, up
to :data:`BATCH` per request, and kept for the adapter's life (reference data, the same for every
user of the connection). A look-up that fails leaves the symbol ``null`` for this read and is tried
again on the next one; it never fails the read itself.

Orders and positions get their symbols here (the cross-account ``positions`` query keeps each
account's window in lemon's own order, so a symbol changes no page boundary).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol, TypeVar

from ...domain.enums import AssetClass
from ...domain.errors import GatewayError
from ...domain.models import Instrument
from .client import LemonClient
from .parsing import INSTRUMENT_TYPES

__all__ = ["BATCH", "SymbolDirectory"]

log = logging.getLogger(__name__)

#: ISINs per market-data request (lemon accepts a comma-separated list)
BATCH = 10


class _HasInstrument(Protocol):
    instrument: Instrument


T = TypeVar("T", bound=_HasInstrument)


class SymbolDirectory:
    def __init__(self, client: LemonClient) -> None:
        self.client = client
        self._known: dict[str, tuple[str | None, AssetClass | None]] = {}

    async def complete(self, items: Sequence[T]) -> list[T]:
        """``items`` (positions or orders) with ``instrument.symbol`` and ``asset_class`` filled
        from the market data, looking up the ISINs not known yet."""
        out = list(items)
        missing = sorted({i.instrument.isin for i in out if i.instrument.isin and i.instrument.isin not in self._known})
        for start in range(0, len(missing), BATCH):
            batch = missing[start:start + BATCH]
            try:
                results = await self.client.get_instruments(batch)
            except GatewayError as exc:
                log.warning("lemon instruments look-up failed: %s", exc.message)
                break
            for row in results:
                if isinstance(row, dict) and row.get("isin"):
                    self._known[str(row["isin"])] = (str(row["symbol"]) if row.get("symbol") else None,
                                                     INSTRUMENT_TYPES.get(str(row.get("type") or "").lower()))
            for isin in batch:
                self._known.setdefault(isin, (None, None))  # not listed: known to have no ticker
        for item in out:
            symbol, kind = self._known.get(item.instrument.isin or "", (None, None))
            if symbol or kind:
                item.instrument = replace(item.instrument, symbol=item.instrument.symbol or symbol,
                                          asset_class=item.instrument.asset_class or kind)
        return out
