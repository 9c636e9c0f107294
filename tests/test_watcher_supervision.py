"""Issue #11: a watcher that dies on something other than a broker error (here, its Redis connection
gone) is restarted with back-off, and its subscribers receive the next event it sees (also when the
event's publication was what failed: the change is seen again, never lost)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from gateway.sandbox.lemon import LARGE_API_KEY
from gateway.sandbox.venue import SandboxRunner
from tests.conftest import FAST_EVENTS, MAIN_KEY, gateway_config, lemon_connections
from tests.harness import SandboxControl, Subscription, eventually, free_port, running_gateway, start_redis


class _OwnRedis:
    """A redis-server of the test's own, stopped and started again (empty) on the same port;
    ``events`` is the gateway's ``[events]`` table on it."""

    def __init__(self, folder: Path) -> None:
        self.port, self.folder = free_port(), folder
        self.events = {**FAST_EVENTS, "backend": "redis", "redis_url": f"redis://127.0.0.1:{self.port}/0",
                       "stream_key": f"test:supervision:{self.port}"}
        self.start()

    def start(self) -> None:
        self.proc = start_redis(self.port, self.folder)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def _metric(url: str, name: str, connection: str = "lemon") -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(url.replace("/graphql", "/metrics"))).text
    match = re.search(rf'{name}\{{connection="{connection}"\}} ([0-9.e+]+)', text)
    return float(match.group(1)) if match else 0.0


async def _metric_total(url: str, name: str) -> float:
    """The sum of every series of counter ``name``."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(url.replace("/graphql", "/metrics"))).text
    return sum(float(m) for m in re.findall(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", text, re.M))


@pytest.mark.parametrize("fill", ["while Redis is down", "after Redis is back"])
async def test_a_watcher_whose_redis_connection_fails_is_restarted_and_its_subscribers_get_the_next_event(
        fill: str, tmp_path: Path, lemon_url: str, lemon_control: SandboxControl) -> None:
    """Redis is stopped under a running watcher, then started again empty (statuses, live mark and
    lease gone). Whether the order fills during the outage or after Redis is back, its subscribers get
    the FILLED event: the restarted watcher compares with what it saw before the failure instead of
    taking the fill as its new baseline."""
    redis = _OwnRedis(tmp_path)
    try:
        async with running_gateway(gateway_config(lemon_connections(lemon_url), events=redis.events)) as gateway:
            client = gateway.client(MAIN_KEY)
            account = (await client.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1})
                       )["connections"][0]["accounts"][0]["id"]
            await lemon_control.price("IE00B4L5Y983", "101.73")
            async with Subscription(gateway.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as sub:
                await asyncio.sleep(0.5)  # the watcher takes its baseline
                placed = (await client.data("PlaceOrder", {"input": {
                    "accountId": account, "instrument": {"isin": "IE00B4L5Y983"}, "side": "BUY", "type": "LIMIT",
                    "quantity": "1", "limitPrice": "95.00", "timeInForce": "GTC"}}))["placeOrder"]
                order = placed["order"]["id"]
                await sub.until(lambda e: e["order"]["id"] == order and e["status"] == "SUBMITTED")

                redis.stop()  # the watcher's next Redis call fails

                async def restarted() -> bool:
                    return await _metric(gateway.url, "gateway_watcher_restarts_total") >= 1

                await eventually(restarted, timeout=15)
                if fill == "while Redis is down":  # the order fills: only a poll can see it
                    await lemon_control.price("IE00B4L5Y983", "94.00")
                    await asyncio.sleep(1.0)  # the watcher fails again meanwhile
                redis.start()  # back, empty: statuses, live mark and lease are gone
                published = await _metric_total(gateway.url, "gateway_events_published_total")
                if fill == "after Redis is back":
                    await lemon_control.price("IE00B4L5Y983", "94.00")
                try:
                    filled = await sub.until(lambda e: e["order"]["id"] == order and e["status"] == "FILLED",
                                             timeout=20)
                except TimeoutError:  # say where the event stopped: never published, or published and not delivered
                    raise AssertionError(
                        "no FILLED event within 20 s; events published since Redis came back: "
                        f"{await _metric_total(gateway.url, 'gateway_events_published_total') - published}, "
                        f"watcher restarts {await _metric(gateway.url, 'gateway_watcher_restarts_total')}, "
                        f"polls {await _metric(gateway.url, 'gateway_upstream_polls_total')}") from None
                assert filled[-1]["status"] == "FILLED" and filled[-1]["previousStatus"] == "SUBMITTED"
    finally:
        redis.stop()
        await lemon_control.price("IE00B4L5Y983", "101.73")


async def test_a_watcher_outlives_the_deadline_and_time_budget_of_the_subscription_that_started_it(
        lemon_url: str, lemon_control: SandboxControl) -> None:
    """The watcher is the account's, not the first subscriber's operation: its polls go on after that
    operation's deadline and its connection's time budget would have run out."""
    config = gateway_config(lemon_connections(lemon_url, timeout=1.0), events=FAST_EVENTS)
    config.limits.operation_timeout = 1.5
    async with running_gateway(config) as gateway:
        client = gateway.client(MAIN_KEY)
        account = (await client.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1}))["connections"][0][
            "accounts"][0]["id"]
        await lemon_control.price("IE00B4L5Y983", "101.73")
        try:
            async with Subscription(gateway.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as sub:
                placed = (await client.data("PlaceOrder", {"input": {
                    "accountId": account, "instrument": {"isin": "IE00B4L5Y983"}, "side": "BUY", "type": "LIMIT",
                    "quantity": "1", "limitPrice": "95.00", "timeInForce": "GTC"}}))["placeOrder"]["order"]["id"]
                await asyncio.sleep(3.0)  # past the subscribing operation's deadline and its time budget
                await lemon_control.price("IE00B4L5Y983", "94.00")  # the fill only the watcher's poll sees
                events = await sub.until(lambda e: e["order"]["id"] == placed and e["status"] == "FILLED", timeout=10)
                assert events[-1]["status"] == "FILLED"
        finally:
            await lemon_control.price("IE00B4L5Y983", "101.73")


async def test_an_order_made_at_the_broker_during_a_redis_outage_reaches_the_subscribers_of_an_empty_account(
        tmp_path: Path, own_lemon_venue: SandboxRunner) -> None:
    """The account (lemon's second paper account) has no orders when the watcher first looks. While
    Redis is down an order is made at the broker (not through the gateway, so nothing publishes it);
    Redis comes back empty. The restarted watcher has taken its first look (it told its subscribers
    of no orders), so the new order is news, not part of a new baseline."""
    base = own_lemon_venue.base_urls["lemon"]
    redis = _OwnRedis(tmp_path)
    try:
        async with running_gateway(gateway_config(lemon_connections(base), events=redis.events)) as gateway:
            dashboard = await gateway.client().data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1})
            account = next(c for c in dashboard["connections"] if c["name"] == "lemon-large")["accounts"][0]
            assert account["orders"]["totalCount"] == 0
            async with Subscription(gateway.url, "OrderStatusChanged", {"accountId": account["id"]}, None) as sub:
                await asyncio.sleep(0.5)  # the watcher takes its first look: no orders
                redis.stop()

                async def restarted() -> bool:
                    return await _metric(gateway.url, "gateway_watcher_restarts_total", "lemon-large") >= 1

                await eventually(restarted, timeout=15)
                async with httpx.AsyncClient(base_url=base.rstrip("/") + "/",
                                             headers={"Authorization": f"Bearer {LARGE_API_KEY}"}) as raw:
                    made = await raw.post("orders", json={"isin": "IE00B4L5Y983", "side": "buy", "quantity": 1,
                                                          "venue": "xmun", "limit_price": 50, "expires_at": "P0D",
                                                          "idempotency": "made-at-the-broker"})
                    assert made.status_code == 200, made.text
                redis.start()  # back, empty
                seen = await sub.until(lambda e: e["order"]["clientOrderId"] == "made-at-the-broker", timeout=20)
                assert seen[-1]["previousStatus"] is None
    finally:
        redis.stop()
