"""SecurityId → Instrument for one connection.

ETNA orders carry only ``SecurityId``; positions carry ``Symbol`` / ``SecurityCurrency``. Each security
is looked up once with ``GET v1.0/equities/{id}`` (security reference data, the same for every user
of the connection, so it is kept for the adapter's life); until then what a position said stands
in. A security ETNA does not know stays an instrument with only its id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ...domain.errors import OrderNotFound
from ...domain.models import Instrument
from .client import EtnaClient
from .parsing import instrument_from_equity

__all__ = ["SecurityMap"]


class SecurityMap:
    def __init__(self, client: EtnaClient) -> None:
        self.client = client
        self._known: dict[str, Instrument] = {}  # from equity look-ups
        self._partial: dict[str, Instrument] = {}  # from positions (no exchange)

    def learn(self, instrument: Instrument) -> None:
        """Remember what a position says of its security until the security is looked up."""
        if instrument.broker_instrument_id is not None:
            self._partial[instrument.broker_instrument_id] = instrument

    def get(self, security_id: str) -> Instrument:
        return (self._known.get(security_id) or self._partial.get(security_id)
                or Instrument(broker_instrument_id=security_id))

    async def resolve(self, security_ids: Iterable[str]) -> None:
        """Look up the securities not known yet, concurrently."""
        missing = sorted({s for s in security_ids if s not in self._known})
        if missing:
            await asyncio.gather(*(self._fetch(s) for s in missing))

    async def _fetch(self, security_id: str) -> None:
        try:
            response = await self.client.get_equity(security_id)
        except OrderNotFound:
            self._known[security_id] = Instrument(broker_instrument_id=security_id)
            return
        if isinstance(response.body, dict):
            self._known[security_id] = instrument_from_equity(response.body)
