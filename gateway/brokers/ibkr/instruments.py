"""Instrument resolution for IBKR: symbol / ISIN → conid through ``iserver/secdef/search``.

Contract definitions are reference data, the same for every user, so resolutions are cached per
connection for ``ttl`` seconds (no user data is cached).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ...domain.errors import InvalidInput, OrderNotFound
from ...domain.models import Instrument
from ...domain.requests import InstrumentRef
from .client import IbkrClient
from .parsing import EXCHANGE_MIC, parse_contract

__all__ = ["InstrumentResolver"]


@dataclass(slots=True)
class InstrumentResolver:
    client: IbkrClient
    ttl: float = 3600.0
    _cache: dict[tuple[str, str], tuple[float, Instrument]] = field(default_factory=dict)
    _ids: dict[tuple[str, str], tuple[float, frozenset[str]]] = field(default_factory=dict)

    async def resolve(self, ref: InstrumentRef) -> Instrument:
        """The contract ``ref`` names. ``broker_instrument_id`` is taken as the conid as is; else
        the ISIN or symbol is searched (first stock match, on ``exchange`` when given).

        Raises ``InvalidInput`` when ``ref`` names nothing, ``OrderNotFound`` when IBKR has no match.
        """
        if ref.broker_instrument_id:
            if not ref.broker_instrument_id.isdigit():
                raise InvalidInput("an IBKR brokerInstrumentId is a numeric conid",
                                   field="instrument.brokerInstrumentId")
            return Instrument(symbol=ref.symbol, isin=ref.isin, exchange=ref.exchange,
                              broker_instrument_id=ref.broker_instrument_id)
        query = (ref.isin or ref.symbol or "").strip().upper()
        if not query:
            raise InvalidInput("name the instrument by isin, symbol or brokerInstrumentId", field="instrument")
        key = (query, (ref.exchange or "").upper())
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        results = await self.client.secdef_search(query)
        candidates = [parse_contract(r) for r in results or [] if isinstance(r, dict)]
        if ref.exchange:
            wanted = ref.exchange.upper()
            candidates = [c for c in candidates if (c.exchange or "").upper() == wanted
                          or EXCHANGE_MIC.get((c.exchange or "").upper()) == wanted]
        if not candidates:
            raise OrderNotFound(f"IBKR knows no contract for {query}")
        found = candidates[0]
        if ref.isin:
            found = Instrument(symbol=found.symbol, isin=ref.isin, name=found.name, exchange=found.exchange,
                               currency=found.currency, asset_class=found.asset_class,
                               broker_instrument_id=found.broker_instrument_id)
        self._cache[key] = (time.monotonic(), found)
        return found

    async def ids_for_isin(self, isin: str) -> frozenset[str]:
        """The conids IBKR lists for ``isin`` (every listing ``iserver/secdef/search`` returns for
        it; empty when none), kept ``ttl`` seconds. IBKR's positions and live orders carry no ISIN,
        so an ISIN filter matches them through these conids (``IsinResolver``)."""
        query = isin.strip().upper()
        key = (query, "\x00isin")
        hit = self._ids.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        results = await self.client.secdef_search(query)
        ids = frozenset(str(r["conid"]) for r in results or [] if isinstance(r, dict) and r.get("conid") is not None)
        self._ids[key] = (time.monotonic(), ids)
        return ids
