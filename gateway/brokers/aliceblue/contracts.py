"""The contract master: (exchange, symbol | trading symbol | ISIN | token) → listing.

Rows are Alice Blue's V2 contract master items (``exch``, ``token``, ``symbol``,
``trading_symbol``, ``formatted_ins_name``, ``lot_size``, ``tick_size``; ``isin`` where given).
The master is public reference data, the same for every user: it is cached per exchange for
:data:`TTL` seconds (Alice Blue rebuilds it once a day), never per request or per principal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ...domain.errors import InvalidInput
from ...domain.requests import InstrumentRef

__all__ = ["TTL", "Contract", "ContractMaster"]

TTL = 12 * 3600.0
EXCHANGES = ("NSE", "BSE")


@dataclass(frozen=True, slots=True)
class Contract:
    exchange: str
    token: str
    symbol: str
    trading_symbol: str
    name: str | None
    isin: str | None
    tick_size: Decimal | None
    lot_size: int


def _contract(row: dict[str, Any]) -> Contract | None:
    token, exchange = str(row.get("token") or ""), str(row.get("exch") or "").upper()
    if not token or not exchange:
        return None
    try:
        tick = Decimal(str(row["tick_size"])) if row.get("tick_size") not in (None, "") else None
    except InvalidOperation:
        tick = None
    lot = str(row.get("lot_size") or "1")
    return Contract(exchange, token, str(row.get("symbol") or ""), str(row.get("trading_symbol") or ""),
                    row.get("formatted_ins_name") or None, row.get("isin") or None, tick,
                    int(lot) if lot.isdigit() else 1)


class ContractMaster:
    """Lazily loaded, TTL-cached listings of NSE and BSE."""

    def __init__(self, fetch: Callable[[str], Awaitable[list[dict[str, Any]]]]) -> None:
        self._fetch = fetch
        self._by_exchange: dict[str, tuple[float, list[Contract]]] = {}
        self._lock = asyncio.Lock()

    async def load(self, exchange: str) -> list[Contract]:
        exchange = exchange.upper()
        async with self._lock:
            cached = self._by_exchange.get(exchange)
            if cached is not None and time.monotonic() - cached[0] < TTL:
                return cached[1]
            rows = await self._fetch(exchange)
            contracts = [c for c in (_contract(r) for r in rows if isinstance(r, dict)) if c is not None]
            self._by_exchange[exchange] = (time.monotonic(), contracts)
            return contracts

    def cached(self, exchange: str, token: str) -> Contract | None:
        """The listing ``token`` on ``exchange`` if that master is loaded (no upstream call)."""
        entry = self._by_exchange.get(exchange.upper())
        if entry is None:
            return None
        return next((c for c in entry[1] if c.token == token), None)

    def isin_for(self, exchange: str, token: str) -> str | None:
        contract = self.cached(exchange, token)
        return contract.isin if contract else None

    async def resolve(self, ref: InstrumentRef) -> Contract:
        """The listing ``ref`` names: ``broker_instrument_id`` (with ``exchange``, NSE by default),
        else ``symbol`` (``ACC`` or ``ACC-EQ``) on ``exchange``, else ``isin`` (NSE first, then BSE).

        Raises:
            InvalidInput: nothing names a listing, or no listing matches (field ``instrument``).
        """
        exchange = (ref.exchange or "").upper()
        if exchange and exchange not in EXCHANGES:
            raise InvalidInput(f"Alice Blue trades NSE and BSE here, not {ref.exchange!r}", field="instrument.exchange")
        if ref.broker_instrument_id:
            ex = exchange or "NSE"
            found = next((c for c in await self.load(ex) if c.token == ref.broker_instrument_id), None)
            if found is None:
                raise InvalidInput(f"no {ex} instrumentId {ref.broker_instrument_id}",
                                   field="instrument.brokerInstrumentId")
            return found
        if ref.symbol:
            want = ref.symbol.upper()
            for ex in (exchange,) if exchange else EXCHANGES:
                for c in await self.load(ex):
                    if want in (c.symbol.upper(), c.trading_symbol.upper()):
                        return c
            raise InvalidInput(f"no Alice Blue listing for symbol {ref.symbol!r}", field="instrument.symbol")
        if ref.isin:
            for ex in (exchange,) if exchange else EXCHANGES:
                for c in await self.load(ex):
                    if c.isin and c.isin.upper() == ref.isin.upper():
                        return c
            raise InvalidInput(f"no Alice Blue listing for ISIN {ref.isin}", field="instrument.isin")
        raise InvalidInput("name the instrument by brokerInstrumentId, symbol or isin", field="instrument")
