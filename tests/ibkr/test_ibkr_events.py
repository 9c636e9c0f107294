"""Issue 6 for IBKR through the gateway: ``orderStatusChanged`` over real WebSocket connections
(graphql-transport-ws) fed by the Client Portal WebSocket (``sor``), with the REST re-synchronisation
of a silent stream and the fallback while the venue's socket is down.

What carried an event is shown from outside: the venue counts its REST order reads
(``GET …/iserver/account/orders``) and its sockets (``/__sandbox__/ibkr/ws``), the gateway counts
its REST snapshots (``gateway_upstream_polls_total``, /metrics)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from ibkr_support import SUBS

from gateway.config import GatewayConfig
from gateway.domain.keys import AccountKey
from gateway.graphql.ids import encode
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner
from tests.harness import RunningGateway, SandboxControl, Subscription, eventually, running_gateway

ORDERS_READ = "GET /v1/api/iserver/account/orders"
AAPL_CONID = 265598
#: the watcher's REST resync every 30 s cannot explain a delivery within a test
EVENTS = {"fast_interval": 0.2, "slow_interval": 0.5, "resync_interval": 30.0, "silence_timeout": 30.0,
          "linger": 0.2}


@dataclass
class Venue:
    url: str  # wire base URL (…/v1/api/)
    options: dict[str, Any]
    control: SandboxControl

    async def reads(self) -> int:
        return (await self.control.stats()).get(ORDERS_READ, 0)

    async def ws(self, **flags: bool) -> dict[str, Any]:
        """The venue's socket flags and counts (``open``, ``accepted``, ``refused``); sets ``flags``."""
        return await self.control._call("POST" if flags else "GET", "/ibkr/ws", flags or None)

    async def place_direct(self, account: str, client_order_id: str, quantity: int = 1) -> str:
        """A market order sent to the wire API by another client of the session (not the gateway)."""
        body = {"orders": [{"conid": AAPL_CONID, "orderType": "MKT", "side": "BUY", "tif": "DAY",
                            "quantity": quantity, "cOID": client_order_id}]}
        async with httpx.AsyncClient(timeout=10) as http:
            answer = (await http.post(f"{self.url}iserver/account/{account}/orders", json=body)).json()
        assert isinstance(answer, list) and "order_id" in answer[0], answer
        return str(answer[0]["order_id"])


@pytest_asyncio.fixture(scope="module")
async def venue() -> AsyncIterator[Venue]:
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast(),
                           venue_options={"ibkr": {"pacing": {"enabled": False}, "ws_heartbeat": 0.3}})
    urls = await runner.start()
    try:
        yield Venue(urls["ibkr"], dict(runner.venue("ibkr").options), SandboxControl(urls["ibkr"]))
    finally:
        await runner.stop()


def _config(venue: Venue, **events: float) -> GatewayConfig:
    # ws_silence (the adapter's own dead-socket timeout) stays long: the watcher's silence_timeout is tested
    options = {**venue.options, "orders_repoll_delay": 0.05, "ws_retry": 0.3}
    return GatewayConfig.model_validate({
        "profile": "development",
        "connections": {"ibkr": {"broker": "ibkr", "base_url": venue.url, "credentials": {}, "options": options,
                                 "timeout": 5.0}},
        "events": {**EVENTS, **events},
    })


def _account(number: str) -> str:
    return encode(AccountKey("ibkr", number))


async def _get(gateway: RunningGateway, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(gateway.url.replace("/graphql", path))


async def _polls(gateway: RunningGateway) -> float:
    """The gateway's ``gateway_upstream_polls_total`` for the IBKR connection."""
    text = (await _get(gateway, "/metrics")).text
    match = re.search(r'gateway_upstream_polls_total\{connection="ibkr"\} ([0-9.]+)', text)
    return float(match.group(1)) if match else 0.0


async def _place(gateway: RunningGateway, account: str, **kw: Any) -> dict[str, Any]:
    result = (await gateway.client().data("PlaceOrder", {"input": {
        "accountId": account, "instrument": {"symbol": "AAPL"}, "side": "BUY", "type": "MARKET", "quantity": "1",
        **kw}}))["placeOrder"]
    assert result["__typename"] == "OrderPlaced", result
    return result["order"]


async def _streaming(venue: Venue) -> None:
    """Wait until the watcher has taken its REST baseline and holds a greeted, subscribed socket."""
    await eventually(lambda: _open(venue))
    await asyncio.sleep(0.3)  # greeting, sts, sor+{} and the first full frame


async def _open(venue: Venue) -> bool:
    return (await venue.ws())["open"] >= 1


def _filled(order_ids: set[str], seen: set[str]) -> Any:
    def check(event: dict[str, Any]) -> bool:
        if event["status"] == "FILLED":
            seen.add(event["order"]["brokerOrderId"])
        return order_ids <= seen
    return check


async def test_ibkr_fills_reach_the_subscriber_through_the_cp_websocket_without_rest_reads(venue: Venue) -> None:
    number = SUBS[10]
    async with running_gateway(_config(venue)) as gateway, \
            Subscription(gateway.url, "OrderStatusChanged", {"accountId": _account(number)}, None) as sub:
        await _streaming(venue)
        reads, polls, sockets = await venue.reads(), await _polls(gateway), (await venue.ws())["accepted"]
        started = time.monotonic()
        mine = [await _place(gateway, _account(number)) for _ in range(3)]
        direct = [await venue.place_direct(number, f"direct-{n}") for n in range(2)]
        wanted = {o["brokerOrderId"] for o in mine} | set(direct)
        events = await sub.until(_filled(wanted, set()), timeout=5)
        elapsed = time.monotonic() - started

        assert elapsed < 3
        filled = [e for e in events if e["status"] == "FILLED"]
        assert {e["order"]["brokerOrderId"] for e in filled} == wanted and len(filled) == 5  # once each
        assert all(e["order"]["account"]["id"] == _account(number) for e in events)
        by_id = {e["order"]["brokerOrderId"]: e for e in filled}
        assert all(by_id[i]["order"]["clientOrderId"] == f"direct-{n}" for n, i in enumerate(direct))
        assert all(e["order"]["filledQuantity"] == "1" for e in filled)
        # no REST order read and no watcher snapshot for any of these events: the socket carried them
        assert await venue.reads() == reads
        assert await _polls(gateway) == polls
        assert (await venue.ws())["accepted"] == sockets  # on the socket opened before (no reconnect)
        assert await sub.quiet(0.3) == []  # nothing twice


async def test_ibkr_silent_stream_is_resynchronised_from_rest_and_followed_again(venue: Venue) -> None:
    number = SUBS[11]
    price = (await venue.control.state())["prices"]["AAPL"]
    async with running_gateway(_config(venue, silence_timeout=1.0)) as gateway, \
            Subscription(gateway.url, "OrderStatusChanged", {"accountId": _account(number)}, None) as sub:
        await _streaming(venue)
        working = await _place(gateway, _account(number), type="LIMIT", limitPrice="225.00")
        await sub.until(lambda e: e["order"]["id"] == working["id"] and e["status"] == "SUBMITTED")
        sockets = (await venue.ws(silent=True))["accepted"]
        try:
            reads, polls = await venue.reads(), await _polls(gateway)
            started = time.monotonic()
            await venue.control.price("AAPL", "224.00")  # the limit buy at 225 fills, and the socket says nothing
            events = await sub.until(lambda e: e["order"]["id"] == working["id"] and e["status"] == "FILLED",
                                     timeout=4)
            assert time.monotonic() - started < 3  # silence_timeout 1 s, then one REST snapshot
            assert events[-1]["previousStatus"] == "SUBMITTED"
            assert await _polls(gateway) > polls and await venue.reads() > reads  # re-synchronised from REST
        finally:
            await venue.control.price("AAPL", price)
            await venue.ws(silent=False)

        # the socket talks again: the watcher follows it again, on the same socket
        reads, polls = await venue.reads(), await _polls(gateway)
        mine = [await _place(gateway, _account(number)) for _ in range(2)]
        direct = [await venue.place_direct(number, f"after-silence-{n}") for n in range(2)]
        wanted = {o["brokerOrderId"] for o in mine} | set(direct)
        events = await sub.until(_filled(wanted, set()), timeout=5)
        assert len([e for e in events if e["status"] == "FILLED"]) == 4
        # at most one silence resync may fall into this window; the four fills are not REST's doing
        assert await _polls(gateway) - polls <= 1
        assert await venue.reads() - reads <= 2  # one snapshot (its cold-read retry included)
        assert (await venue.ws())["accepted"] == sockets


async def test_ibkr_socket_down_falls_back_to_rest_and_leaves_nothing_running(venue: Venue) -> None:
    number = SUBS[12]
    await venue.ws(refuse=True)
    try:
        async with running_gateway(_config(venue)) as gateway:
            async with Subscription(gateway.url, "OrderStatusChanged", {"accountId": _account(number)}, None) as sub:
                await eventually(lambda: _refused(venue, 1))  # the watcher tried the socket
                reads = await venue.reads()
                placed = await _place(gateway, _account(number))
                direct = await venue.place_direct(number, "while-down")
                await sub.until(_filled({placed["brokerOrderId"], direct}, set()), timeout=5)
                assert await venue.reads() > reads  # REST carried them
                refused = (await venue.ws())["refused"]
                await eventually(lambda: _refused(venue, refused + 1))  # and keeps trying it
                assert (await venue.ws())["open"] == 0
            await eventually(lambda: _idle(gateway))
            # nothing left behind: no REST reads and no socket attempts once the watcher is gone
            reads, refused = await venue.reads(), (await venue.ws())["refused"]
            await asyncio.sleep(1.0)  # > 3 × ws_retry
            assert (await venue.reads(), (await venue.ws())["refused"]) == (reads, refused)
    finally:
        await venue.ws(refuse=False)


async def _refused(venue: Venue, at_least: int) -> bool:
    return (await venue.ws())["refused"] >= at_least


async def _idle(gateway: RunningGateway) -> bool:
    health = (await _get(gateway, "/healthz")).json()
    return health["subscriptions"] == 0 and health["watchers"] == 0
