"""SecurityId → Instrument for one connection.

ETNA orders carry only ``SecurityId``; positions carry ``Symbol`` / ``CompanyName`` /
``SecurityCurrency`` / ``SecurityType`` but no exchange (nor ISIN). Each security an order or a
position names is looked up once with ``GET v1.0/equities/{id}`` and kept for the adapter's life
(security reference data is the same for every user of the connection). Concurrent readers of one
id share one request.

Cost: ETNA has no documented batch look-up by id (``GET v1.0/equities`` filters by ``Symbol in
(…)``, not by ``Id``), so a cold adapter sends one request per distinct security among the orders
it parses. Order lists are read by Relay window (see :mod:`.windows`), so a Dashboard's first
load costs at most one look-up per distinct security in its windows (≤ ``first`` per account),
not per security in the account's history; later loads cost none.

A look-up ETNA answers 404 is remembered as an instrument with only its id; one that fails
otherwise (timeout, 5xx) is not remembered, and the order keeps what a position said of its
security (or the caller's hint) until a later read succeeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from ...domain.errors import GatewayError, OrderNotFound
from ...domain.models import Instrument
from .client import EtnaClient
from .parsing import instrument_from_equity

__all__ = ["SecurityMap"]

log = logging.getLogger(__name__)


class SecurityMap:
    def __init__(self, client: EtnaClient) -> None:
        self.client = client
        self._known: dict[str, Instrument] = {}  # from equity look-ups
        self._partial: dict[str, Instrument] = {}  # from positions (no exchange)
        self._inflight: dict[str, asyncio.Task[None]] = {}

    def learn(self, instrument: Instrument) -> None:
        """Remember what a position says of its security until the security is looked up."""
        if instrument.broker_instrument_id is not None:
            self._partial[instrument.broker_instrument_id] = instrument

    def known(self, security_id: str) -> bool:
        return security_id in self._known

    def looked_up(self, security_id: str) -> Instrument | None:
        """What the security look-up said of ``security_id`` (``None`` before one succeeded)."""
        return self._known.get(security_id)

    def get(self, security_id: str) -> Instrument:
        return (self._known.get(security_id) or self._partial.get(security_id)
                or Instrument(broker_instrument_id=security_id))

    async def resolve(self, security_ids: Iterable[str]) -> None:
        """Look up the securities not known yet, concurrently, one request per id even when
        several readers ask at once. Never raises for a failed look-up."""
        tasks = []
        for sid in sorted({s for s in security_ids if s not in self._known}):
            task = self._inflight.get(sid)
            if task is None:
                task = asyncio.create_task(self._fetch(sid))
                self._inflight[sid] = task
                task.add_done_callback(lambda _t, sid=sid: self._inflight.pop(sid, None))
            tasks.append(task)
        if tasks:
            await asyncio.wait(tasks)  # a cancelled reader does not cancel the shared look-ups

    async def _fetch(self, security_id: str) -> None:
        try:
            response = await self.client.get_equity(security_id)
        except OrderNotFound:
            self._known[security_id] = Instrument(broker_instrument_id=security_id)
            return
        except GatewayError as exc:
            log.warning("ETNA security %s look-up failed: %s", security_id, exc.message)
            return
        if isinstance(response.body, dict):
            try:
                self._known[security_id] = instrument_from_equity(response.body)
            except (GatewayError, KeyError) as exc:
                log.warning("ETNA security %s is unreadable: %s", security_id, exc)
