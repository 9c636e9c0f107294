"""The CP WebSocket (``/v1/api/ws``, topic ``sor``) of the venue and the adapter's ``watch_orders``
over it: full orders first then deltas, one account only, reconnect, and REST while the socket is down."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio
from ibkr_support import CONNECTION, SUBS, Ctx, make_adapter, order, start, stop, until

from gateway.brokers.ibkr.adapter import IbkrAdapter
from gateway.domain.enums import OrderStatus
from gateway.domain.keys import AccountKey
from gateway.domain.models import Order
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner

ORDERS_READ = "GET /v1/api/iserver/account/orders"


@pytest_asyncio.fixture(scope="module")
async def ctx() -> AsyncIterator[Ctx]:
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast(), venue_options={"ibkr": {"ws_heartbeat": 0.2}})
    c = await start(runner, ws_retry=0.1, ws_silence=1.0)
    yield c
    await stop(c, runner)


class Collector:
    def __init__(self, adapter: IbkrAdapter, account: str) -> None:
        self.orders: list[Order] = []
        self.task = asyncio.create_task(self._run(adapter.watch_orders(AccountKey(CONNECTION, account))))

    async def _run(self, stream: AsyncIterator[Order]) -> None:
        async for item in stream:
            self.orders.append(item)

    def status_of(self, order_id: str) -> OrderStatus | None:
        seen = [o.status for o in self.orders if o.key.broker_order_id == order_id]
        return seen[-1] if seen else None

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def test_ibkr_venue_socket_greets_sends_full_orders_then_deltas_and_heartbeats(ctx: Ctx) -> None:
    frames: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(ctx.base_url + "ws") as ws:
        for _ in range(3):
            frames.append(json.loads((await ws.receive()).data))
        assert [f["topic"] for f in frames] == ["system", "act", "sts"] and frames[2]["args"]["authenticated"]
        await ws.send_str("sor+{}")
        first = json.loads((await ws.receive()).data)
        assert first["topic"] == "sor" and len(first["args"]) >= 15
        assert all({"acct", "orderId", "status", "conid", "side", "totalSize"} <= set(a) for a in first["args"])
        placed = await ctx.adapter.create_order(order("ws-raw", account=SUBS[2]))
        assert isinstance(placed, Order)
        seen: list[dict[str, Any]] = []

        async def filled() -> bool:
            frame = json.loads((await ws.receive()).data)
            seen.append(frame)
            mine = [a for a in frame.get("args", []) if str(a.get("orderId")) == placed.key.broker_order_id]
            return any(a.get("status") == "Filled" for a in mine)

        await until(filled)
        deltas = [a for f in seen if f.get("topic") == "sor" for a in f["args"]
                  if str(a.get("orderId")) == placed.key.broker_order_id]
        assert "conid" not in deltas[-1] and deltas[-1]["acct"] == SUBS[2]  # only the changes
        assert any(f.get("topic") == "system" and "hb" in f for f in seen) or \
            json.loads((await ws.receive()).data).get("hb")


async def test_ibkr_watch_orders_streams_one_accounts_changes_without_polling(ctx: Ctx) -> None:
    watcher = Collector(ctx.adapter, SUBS[3])
    try:
        await until(lambda: _true(watcher.orders))  # the full first frame: the account's open orders
        reads = (await ctx.stats()).get(ORDERS_READ, 0)
        placed = await ctx.adapter.create_order(order("ws-1", account=SUBS[3], quantity="3"))
        other = await ctx.adapter.create_order(order("ws-other", account=SUBS[4]))
        assert isinstance(placed, Order) and isinstance(other, Order)
        await until(lambda: _true(watcher.status_of(placed.key.broker_order_id) is OrderStatus.FILLED))
        assert all(o.key.account_number == SUBS[3] for o in watcher.orders)
        assert watcher.status_of(other.key.broker_order_id) is None
        assert (await ctx.stats()).get(ORDERS_READ, 0) - reads <= 1  # placement reads status, not orders
    finally:
        await watcher.close()


async def test_ibkr_watch_orders_reconnects_after_the_session_is_replaced(ctx: Ctx) -> None:
    watcher = Collector(ctx.adapter, SUBS[5])
    try:
        await until(lambda: _true(watcher.orders))
        await ctx.session(authenticated=False)  # the venue closes the socket
        await ctx.session(authenticated=True)
        placed = await ctx.adapter.create_order(order("ws-2", account=SUBS[5]))
        assert isinstance(placed, Order)
        await until(lambda: _true(watcher.status_of(placed.key.broker_order_id) is OrderStatus.FILLED))
    finally:
        await watcher.close()


async def test_ibkr_watch_orders_falls_back_to_rest_while_the_socket_is_down(ctx: Ctx) -> None:
    adapter = make_adapter(ctx.base_url, ctx.venue, global_rate=0, slow_interval=0, orders_repoll_delay=0.05,
                           ws_url="ws://127.0.0.1:9/v1/api/ws", ws_retry=0.1)  # nothing listens there
    await adapter.start()
    watcher = Collector(adapter, SUBS[6])
    try:
        placed = await ctx.adapter.create_order(order("ws-3", account=SUBS[6]))
        assert isinstance(placed, Order)
        await until(lambda: _true(watcher.status_of(placed.key.broker_order_id) is OrderStatus.FILLED))
        assert all(o.key.account_number == SUBS[6] for o in watcher.orders)
    finally:
        await watcher.close()
        await adapter.close()


async def _true(value: Any) -> bool:
    return bool(value)
