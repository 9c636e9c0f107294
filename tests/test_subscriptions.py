"""orderStatusChanged over real WebSocket (graphql-transport-ws) and SSE connections."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import FAST_EVENTS, LARGE_KEY, MAIN_KEY, gateway_config, lemon_connections
from tests.harness import GraphQLClient, RunningGateway, SandboxControl, Subscription, document, eventually, running_gateway
from tests.harness import first_account as _account
from tests.harness import place_market_buy as _place


@pytest.fixture(scope="module")
async def live(lemon_url: str) -> AsyncIterator[RunningGateway]:
    """A gateway with quick watcher intervals, in front of the session's lemon venue."""
    config = gateway_config(lemon_connections(lemon_url), events=FAST_EVENTS)
    config.transport.max_unauthenticated_sockets_per_client = 500  # 200 subscribers connect at once from loopback
    async with running_gateway(config) as gateway:
        yield gateway




async def _health(gateway: RunningGateway) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        return (await http.get(gateway.url.replace("/graphql", "/healthz"))).json()


async def test_market_order_status_sequence_reaches_filled_and_other_accounts_see_nothing(
        live: RunningGateway) -> None:
    client = live.client(MAIN_KEY)
    account = await _account(client)
    other = await _account(live.client(LARGE_KEY))
    async with Subscription(live.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as mine, \
            Subscription(live.url, "OrderStatusChanged", {"accountId": other}, LARGE_KEY) as theirs:
        await asyncio.sleep(0.3)  # the watcher takes its baseline
        order = await _place(client, account)
        events = await mine.until(lambda e: e["order"]["id"] == order["id"] and e["status"] == "FILLED")
        statuses = [e["status"] for e in events if e["order"]["id"] == order["id"]]
        assert statuses[-1] == "FILLED" and len(statuses) == len(set(statuses))
        assert statuses[0] in ("PENDING_SUBMIT", "SUBMITTED")
        for before, after in zip(events, events[1:], strict=False):
            assert before["eventId"] < after["eventId"] or len(before["eventId"]) < len(after["eventId"])
        chained = [e for e in events if e["order"]["id"] == order["id"]]
        for prev, cur in zip(chained, chained[1:], strict=False):
            assert cur["previousStatus"] == prev["status"]
        assert await theirs.quiet(0.5) == []


async def test_resume_after_disconnect_replays_exactly_the_missed_events(
        live: RunningGateway, lemon_control: SandboxControl) -> None:
    client = live.client(MAIN_KEY)
    account = await _account(client)
    await lemon_control.price("IE00B4L5Y983", "101.73")
    async with Subscription(live.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as witness:
        async with Subscription(live.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as first:
            await asyncio.sleep(0.3)
            order = await _place(client, account, instrument={"isin": "IE00B4L5Y983"}, type="LIMIT",
                                 limitPrice="95.00", timeInForce="GTC")
            seen = await first.until(lambda e: e["order"]["id"] == order["id"] and e["status"] == "SUBMITTED")
            last_id = seen[-1]["eventId"]
            await first.abort()
        # while disconnected: the price crosses and the order fills; a second order is placed and cancelled
        await lemon_control.price("IE00B4L5Y983", "94.00")
        second = await _place(client, account, instrument={"isin": "DE0008232125"}, type="LIMIT", limitPrice="1.00")
        await client.data("CancelOrder", {"input": {"orderId": second["id"]}})
        witnessed = await witness.until(lambda e: e["order"]["id"] == second["id"] and e["status"] == "CANCELED")
        if not any(e["order"]["id"] == order["id"] and e["status"] == "FILLED" for e in witnessed):
            witnessed += await witness.until(lambda e: e["order"]["id"] == order["id"] and e["status"] == "FILLED")
        await lemon_control.price("IE00B4L5Y983", "101.73")
        missed_ids = [e["eventId"] for e in witnessed if _after(e["eventId"], last_id)]
        async with Subscription(live.url, "OrderStatusChanged", {"accountId": account, "after": last_id},
                                MAIN_KEY) as resumed:
            replay = [(await resumed.next())["orderStatusChanged"] for _ in missed_ids]
            assert [e["eventId"] for e in replay] == missed_ids
            assert not any(e["missedEvents"] for e in replay)
            assert await resumed.quiet(0.4) == []  # nothing twice


def _after(event_id: str, mark: str) -> bool:
    a, b = (tuple(int(p) for p in x.split("-")) for x in (event_id, mark))
    return a > b


async def test_resume_beyond_retention_says_so(lemon_url: str) -> None:
    config = gateway_config(lemon_connections(lemon_url), events={**FAST_EVENTS, "retention": 10})
    async with running_gateway(config) as gateway:
        client = gateway.client(MAIN_KEY)
        account = await _account(client)
        async with Subscription(gateway.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as sub:
            await asyncio.sleep(0.3)
            await _place(client, account, type="LIMIT", limitPrice="1.00")
            mark = (await sub.next())["orderStatusChanged"]["eventId"]
            for _ in range(6):  # two events each (placed, cancelled): 12 > retention 10
                order = await _place(client, account, type="LIMIT", limitPrice="1.00")
                await client.data("CancelOrder", {"input": {"orderId": order["id"]}})
            await sub.until(lambda e: e["order"]["id"] == order["id"] and e["status"] == "CANCELED")
        async with Subscription(gateway.url, "OrderStatusChanged", {"accountId": account, "after": mark},
                                MAIN_KEY) as resumed:
            first = (await resumed.next())["orderStatusChanged"]
            assert first["missedEvents"] is True


async def test_sse_subscription_sees_the_order_fill(live: RunningGateway) -> None:
    client = live.client(MAIN_KEY)
    account = await _account(client)
    events: list[dict[str, Any]] = []
    placed: dict[str, Any] = {}

    async def listen() -> None:
        body = {"query": document("OrderStatusChanged"), "variables": {"accountId": account}}
        async with httpx.AsyncClient(timeout=30) as http, http.stream(
                "POST", live.url + "/stream", json=body,
                headers={"Accept": "text/event-stream", "Authorization": f"Bearer {MAIN_KEY}"}) as response:
            assert response.status_code == 200
            kind = None
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind == "next":
                    event = json.loads(line[5:])["data"]["orderStatusChanged"]
                    events.append(event)
                    if placed and event["order"]["id"] == placed["id"] and event["status"] == "FILLED":
                        return

    task = asyncio.create_task(listen())
    await eventually(lambda: _health_value(live, "watchers"))
    placed.update(await _place(client, account))
    await asyncio.wait_for(task, 15)
    assert [e["status"] for e in events if e["order"]["id"] == placed["id"]][-1] == "FILLED"
    await eventually(lambda: _zero(live))


async def test_sse_requires_a_key_in_production(lemon_url: str) -> None:
    async with running_gateway(gateway_config(lemon_connections(lemon_url), profile="production")) as gateway:
        async with httpx.AsyncClient() as http:
            response = await http.post(gateway.url + "/stream", json={"query": document("OrderStatusChanged")},
                                       headers={"Accept": "text/event-stream"})
    assert response.status_code == 401


async def _health_value(gateway: RunningGateway, key: str) -> int:
    return int((await _health(gateway))[key])


async def _zero(gateway: RunningGateway) -> bool:
    health = await _health(gateway)
    return health["subscriptions"] == 0 and health["watchers"] == 0


async def test_two_hundred_subscribers_cost_no_more_polls_than_one(
        live: RunningGateway, lemon_control: SandboxControl) -> None:
    client = live.client(MAIN_KEY)
    account = await _account(client)

    async def polls_during(n: int, seconds: float = 2.0) -> int:
        subs = [Subscription(live.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) for _ in range(n)]
        await asyncio.gather(*(s.__aenter__() for s in subs))
        try:
            await eventually(lambda: _health_value(live, "subscriptions"))
            await asyncio.sleep(0.6)  # past the baseline
            await lemon_control.reset()
            await asyncio.sleep(seconds)
            return (await lemon_control.stats()).get("GET /v1/orders", 0)
        finally:
            await asyncio.gather(*(s.__aexit__(None, None, None) for s in subs))
            await eventually(lambda: _zero(live))

    one = await polls_during(1)
    many = await polls_during(200)
    assert one >= 2  # the watcher polls (every 0.5 s when idle, 0.2 s with working orders)
    assert many <= one + 1, (one, many)


async def test_abrupt_closes_leave_no_watchers_or_subscriptions(live: RunningGateway) -> None:
    client = live.client(MAIN_KEY)
    account = await _account(client)
    subs = [await Subscription(live.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY).__aenter__()
            for _ in range(20)]
    await eventually(lambda: _health_value(live, "subscriptions"))
    assert (await _health(live))["watchers"] == 1
    for sub in subs:
        await sub.abort()
    await eventually(lambda: _zero(live), timeout=10)
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(live.url.replace("/graphql", "/metrics"))).text
    assert "gateway_active_subscriptions 0.0" in metrics and "gateway_active_watchers 0.0" in metrics


async def test_unauthenticated_websocket_is_refused_in_production(lemon_url: str) -> None:
    async with running_gateway(gateway_config(lemon_connections(lemon_url), profile="production")) as gateway:
        ws_url = gateway.url.replace("http://", "ws://")
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)  # the refusal closes it (a silent server times out)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403, closed.value  # graphql-ws: Forbidden
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {MAIN_KEY}"}}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"


async def test_server_shutdown_closes_subscriptions_and_watchers(lemon_url: str) -> None:
    config = gateway_config(lemon_connections(lemon_url), events=FAST_EVENTS)
    gateway = await RunningGateway(config).start()
    client = gateway.client(MAIN_KEY)
    account = await _account(client)
    subs = [await Subscription(gateway.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY).__aenter__()
            for _ in range(5)]
    await eventually(lambda: _health_value(gateway, "subscriptions"))
    events = gateway.app.state.events
    assert events.watchers.active == 1
    await asyncio.wait_for(gateway.stop(), 15)
    assert events.watchers.active == 0 and not events.watchers.tasks
    assert events.metrics.active_subscriptions._value.get() == 0
    for sub in subs:
        with pytest.raises(websockets.exceptions.ConnectionClosed):  # closed by the server, not a silent timeout
            await sub.next(2)


async def test_subscriptions_per_connection_are_capped(lemon_url: str) -> None:
    config = gateway_config(lemon_connections(lemon_url), events=FAST_EVENTS)
    config.limits.max_subscriptions_per_connection = 2
    async with running_gateway(config) as gateway:
        account = await _account(gateway.client(MAIN_KEY))
        async with Subscription(gateway.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as sub:
            for op in ("2", "3"):
                await sub.ws.send(json.dumps({"id": op, "type": "subscribe", "payload": {
                    "query": document("OrderStatusChanged"), "variables": {"accountId": account}}}))
            refusal = json.loads(await asyncio.wait_for(sub.ws.recv(), 5))
            assert refusal["type"] == "error" and refusal["id"] == "3"
            assert refusal["payload"][0]["message"] == "Subscription limit reached"


async def test_operations_on_one_websocket_do_not_share_loaders(live: RunningGateway) -> None:
    """graphql-transport-ws runs many operations on one connection: each reads fresh data."""
    client = live.client(MAIN_KEY)
    account = await _account(client)
    async with Subscription(live.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as sub:

        async def positions(op: str) -> str:
            await sub.ws.send(json.dumps({"id": op, "type": "subscribe", "payload": {
                "query": document("Positions"), "variables": {"filter": {"isin": "US0378331005"}}}}))
            while True:
                message = json.loads(await asyncio.wait_for(sub.ws.recv(), 10))
                if message.get("id") == op and message["type"] == "next":
                    return message["payload"]["data"]["positions"]["nodes"][0]["quantity"]

        before = await positions("q1")
        order = await _place(client, account, instrument={"isin": "US0378331005"}, quantity="2")
        await eventually(lambda: _filled(client, order["id"]))
        assert Decimal(await positions("q2")) == Decimal(before) + 2


async def _filled(client: GraphQLClient, order_id: str) -> bool:
    return (await client.data("Order", {"id": order_id}))["order"]["status"] == "FILLED"


async def test_refused_subscriptions_answer_coded_errors(live: RunningGateway) -> None:
    foreign = "WyJBY2NvdW50IiwibGVtb24tbGFyZ2UiLCJ4Il0"  # an Account id of the other caller's connection
    cases = [({"accountId": "garbage"}, "BAD_USER_INPUT"), ({"after": "nope"}, "BAD_USER_INPUT"),
             ({"accountId": foreign}, "NOT_FOUND")]
    async with Subscription(live.url, "OrderStatusChanged", {"after": "1-0", "orderId": None}, MAIN_KEY) as sub:
        for n, (variables, code) in enumerate(cases):
            op = f"refused-{n}"
            await sub.ws.send(json.dumps({"id": op, "type": "subscribe", "payload": {
                "query": document("OrderStatusChanged"), "variables": variables}}))
            while True:
                message = json.loads(await asyncio.wait_for(sub.ws.recv(), 5))
                if message.get("id") == op and message["type"] in ("next", "error"):
                    break
            errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
            assert errors[0]["extensions"]["code"] == code, message


async def test_watcher_polls_only_working_orders_however_long_the_history(lemon_url: str) -> None:
    """150 finished orders (two pages of lemon's 100): a regular poll still costs one list request,
    and an order that finishes is read once on its own."""
    from gateway.sandbox.engine import EngineConfig
    from gateway.sandbox.lemon import API_KEY
    from gateway.sandbox.venue import SandboxRunner
    from tests.conftest import TEST_VENUE

    runner = SandboxRunner(["lemon"], config=EngineConfig.fast(), venue_options=TEST_VENUE)
    urls = await runner.start()
    control = SandboxControl(urls["lemon"])
    try:
        async with httpx.AsyncClient(base_url=urls["lemon"], headers={"Authorization": f"Bearer {API_KEY}"}) as wire:
            for _ in range(150):
                created = (await wire.post("orders", json={"isin": "DE0008232125", "side": "buy", "quantity": 1})).json()
                await wire.delete(f"orders/{created['results']['id']}")
        config = gateway_config(lemon_connections(urls["lemon"]), events={**FAST_EVENTS, "resync_interval": 60})
        async with running_gateway(config) as gateway:
            client = gateway.client(MAIN_KEY)
            account = await _account(client)
            async with Subscription(gateway.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as sub:
                await asyncio.sleep(0.5)  # the baseline sweep (two pages) is behind us
                await control.reset()
                before = await _polls(gateway)
                await asyncio.sleep(1.5)
                lists = (await control.stats()).get("GET /v1/orders", 0)
                assert lists <= await _polls(gateway) - before + 1  # one page per poll, not two
                order = await _place(client, account, type="LIMIT", limitPrice="1.00")
                await client.data("CancelOrder", {"input": {"orderId": order["id"]}})
                await sub.until(lambda e: e["order"]["id"] == order["id"] and e["status"] == "CANCELED")
    finally:
        await runner.stop()


async def _polls(gateway: RunningGateway) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(gateway.url.replace("/graphql", "/metrics"))).text
    line = next(x for x in text.splitlines() if x.startswith('gateway_upstream_polls_total{connection="lemon"}'))
    return float(line.split()[-1])
