"""Shared set-up for the IBKR tests: a venue on loopback and an adapter talking to it over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from gateway.brokers.ibkr.adapter import IbkrAdapter
from gateway.config import ConnectionConfig
from gateway.domain.enums import OrderSide, OrderType
from gateway.domain.keys import AccountKey, AllocationGroupKey
from gateway.domain.requests import InstrumentRef, OrderRequest
from gateway.sandbox.venue import SandboxRunner, Venue

CONNECTION = "ibkr-test"
MASTER = "DF4510328"
SUBS = tuple(f"DU45103{n:02d}" for n in range(30, 50))
BIG = "DU4510341"
RELAXED_OPTIONS: dict[str, Any] = {"global_rate": 0, "slow_interval": 0, "tickle_interval_min": 0,
                                   "orders_repoll_delay": 0.05, "confirmation_ttl": 5.0}


@dataclass
class Ctx:
    adapter: IbkrAdapter
    control: httpx.AsyncClient
    venue: Venue
    base_url: str

    async def stats(self) -> dict[str, int]:
        return (await self.control.get("/__sandbox__/stats")).json()["requests"]

    async def state(self) -> dict[str, Any]:
        return (await self.control.get("/__sandbox__/state")).json()

    async def session(self, **body: Any) -> dict[str, Any]:
        if body:
            return (await self.control.post("/__sandbox__/ibkr/session", json=body)).json()
        return (await self.control.get("/__sandbox__/ibkr/session")).json()


def make_adapter(base_url: str, venue: Venue, **options: Any) -> IbkrAdapter:
    config = ConnectionConfig(name=CONNECTION, broker="ibkr", base_url=base_url, credentials=venue.credentials,
                              options={**venue.options, **options}, timeout=5.0)
    return IbkrAdapter(config)


async def start(runner: SandboxRunner, *, relaxed: bool = True, **options: Any) -> Ctx:
    urls = await runner.start()
    base = urls["ibkr"]
    venue = runner.venue("ibkr")
    control = httpx.AsyncClient(base_url=base.split("/v1/api/")[0], verify=False, timeout=10)
    if relaxed:
        await control.post("/__sandbox__/ibkr/pacing", json={"enabled": False})
        options = {**RELAXED_OPTIONS, **options}
    adapter = make_adapter(base, venue, **options)
    await adapter.start()
    return Ctx(adapter, control, venue, base)


async def stop(ctx: Ctx, runner: SandboxRunner) -> None:
    await ctx.adapter.close()
    await ctx.control.aclose()
    await runner.stop()


def order(client_order_id: str, *, account: str | None = None, group: str | None = None, symbol: str = "AAPL",
          side: OrderSide = OrderSide.BUY, kind: OrderType = OrderType.MARKET, quantity: str = "1",
          limit: str | None = None, isin: str | None = None) -> OrderRequest:
    return OrderRequest(
        instrument=InstrumentRef(isin=isin) if isin else InstrumentRef(symbol=symbol), side=side, type=kind,
        quantity=Decimal(quantity), client_order_id=client_order_id,
        account=AccountKey(CONNECTION, account) if account else None,
        allocation_group=AllocationGroupKey(CONNECTION, group) if group else None,
        limit_price=Decimal(limit) if limit else None)


async def until(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)
