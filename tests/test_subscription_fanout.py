"""One execution per event for identical subscriptions, and slow consumers cut off, over real
WebSockets (graphql-transport-ws)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway.domain.enums import OrderSide, OrderStatus, OrderType
from gateway.domain.keys import OrderKey
from gateway.domain.models import Instrument, Order
from gateway.events import OrderEvent
from gateway.events.fanout import SLOW_CONSUMER_CODE
from tests.conftest import FAST_EVENTS, MAIN_KEY, gateway_config, lemon_connections
from tests.harness import RunningGateway, Subscription, document, eventually, running_gateway
from tests.harness import first_account as _account
from tests.harness import place_market_buy as _place


@pytest.fixture
async def gateway(lemon_url: str) -> AsyncIterator[RunningGateway]:
    config = gateway_config(lemon_connections(lemon_url), events={**FAST_EVENTS, "send_queue_limit": 50})
    config.transport.max_unauthenticated_sockets_per_client = 500  # 200 subscribers connect at once from loopback
    async with running_gateway(config) as running:
        yield running



async def _subscribers(gateway: RunningGateway) -> int:
    return int(gateway.app.state.events.metrics.active_subscriptions._value.get())


async def test_two_hundred_identical_subscriptions_execute_each_event_once(gateway: RunningGateway) -> None:
    client = gateway.client(MAIN_KEY)
    account = await _account(client)
    subs = [Subscription(gateway.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) for _ in range(200)]
    await asyncio.gather(*(s.__aenter__() for s in subs))
    try:
        await eventually(lambda: _count_is(gateway, 200))
        fanout = gateway.app.state.fanout
        assert len(fanout.groups) == 1
        assert _per_subscriber_tasks() == []  # an idle grouped subscription holds no task (nor a writer's)
        before = fanout.executions
        placed = (await client.data("PlaceOrder", {"input": {
            "accountId": account, "instrument": {"isin": "DE0008232125"}, "side": "BUY", "type": "MARKET",
            "quantity": "1"}}))["placeOrder"]["order"]
        seen = await asyncio.gather(*(s.until(lambda e: e["order"]["id"] == placed["id"] and e["status"] == "FILLED")
                                      for s in subs))
        events = {e["eventId"] for e in seen[0]}
        assert all([e["eventId"] for e in got] == [e["eventId"] for e in seen[0]] for got in seen)
        assert fanout.executions - before == len(events), (fanout.executions - before, len(events))
    finally:
        await asyncio.gather(*(s.__aexit__(None, None, None) for s in subs))
    await eventually(lambda: _count_is(gateway, 0))
    assert gateway.app.state.fanout.groups == {}


def _per_subscriber_tasks() -> list[asyncio.Task[Any]]:
    """The gateway's tasks that exist per grouped subscription or per socket writer (the gateway runs
    in the test's loop)."""
    return [t for t in asyncio.all_tasks() if t.get_name() == "ws-writer"
            or "run_operation" in getattr(t.get_coro(), "__qualname__", "")]


async def test_complete_takes_a_grouped_subscription_out_of_its_group_and_the_socket_stays_usable(
        gateway: RunningGateway) -> None:
    client = gateway.client(MAIN_KEY)
    account = await _account(client)
    async with Subscription(gateway.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as sub, \
            Subscription(gateway.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as other:
        await eventually(lambda: _count_is(gateway, 2))
        await sub.ws.send(json.dumps({"id": "1", "type": "complete"}))
        await eventually(lambda: _count_is(gateway, 1))
        assert len(gateway.app.state.fanout.groups) == 1
        # a new operation on the same socket joins the same group and receives events under its own id
        await sub.ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": {
            "query": document("OrderStatusChanged"), "variables": {"accountId": account},
            "operationName": "OrderStatusChanged"}}))
        await eventually(lambda: _count_is(gateway, 2))
        assert len(gateway.app.state.fanout.groups) == 1
        placed = await _place(client, account)
        await other.until(lambda e: e["order"]["id"] == placed["id"])
        while True:
            message = json.loads(await asyncio.wait_for(sub.ws.recv(), 10))
            if message["type"] == "next":
                assert message["id"] == "2", message
                if message["payload"]["data"]["orderStatusChanged"]["order"]["id"] == placed["id"]:
                    break
    await eventually(lambda: _count_is(gateway, 0))
    assert gateway.app.state.fanout.groups == {}


async def _count_is(gateway: RunningGateway, n: int) -> bool:
    return await _subscribers(gateway) == n


def _event(account_number: str, n: int) -> OrderEvent:
    order = Order(key=OrderKey("lemon", account_number, f"ord_burst{n:05d}"),
                  instrument=Instrument(symbol="ALV" + "x" * 8000, isin="DE0008404005", name="Allianz"),
                  side=OrderSide.BUY, type=OrderType.MARKET, quantity=Decimal(1), status=OrderStatus.SUBMITTED,
                  broker_status="activated", updated_at=datetime.now(UTC))
    return OrderEvent(order=order, previous_status=OrderStatus.PENDING_SUBMIT, status=OrderStatus.SUBMITTED,
                      at=datetime.now(UTC), received_at=datetime.now(UTC))


class _Stalled:
    """A graphql-transport-ws client that stops reading its socket after the ack (websockets' sans-I/O
    protocol over a plain socket with a small receive buffer: nothing reads on its behalf)."""

    def __init__(self, url: str) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        host, port = url.split("//")[1].split("/")[0].split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        self.sock.settimeout(10)
        self.protocol = ClientProtocol(parse_uri(url.replace("http://", "ws://")), subprotocols=["graphql-transport-ws"])
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        self._flush()

    def read(self) -> Any:
        """The next event (a message, or the close frame), reading the socket as needed."""
        while True:
            events = self.protocol.events_received()
            if events:
                self._pending = events[1:] + getattr(self, "_pending", [])
                return events[0]
            if getattr(self, "_pending", None):
                return self._pending.pop(0)
            data = self.sock.recv(65536)
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
                return None


async def _stalled_subscriber(gateway: RunningGateway, account: str) -> _Stalled:
    stalled = await asyncio.to_thread(_Stalled, gateway.url)
    await asyncio.to_thread(stalled.read)  # the handshake's response
    stalled.send({"type": "connection_init", "payload": {"Authorization": f"Bearer {MAIN_KEY}"}})
    ack = await asyncio.to_thread(stalled.read)
    assert json.loads(ack.data)["type"] == "connection_ack"
    stalled.send({"id": "1", "type": "subscribe", "payload": {
        "query": document("OrderStatusChanged"), "variables": {"accountId": account}}})
    return stalled


def _close_frame(stalled: _Stalled) -> Any:
    """Read everything that was sent until the close frame."""
    from websockets.frames import Close, Opcode

    while True:
        frame = stalled.read()
        if frame is None:
            return None
        if frame.opcode is Opcode.CLOSE:
            return Close.parse(frame.data)


async def test_a_consumer_that_stops_reading_is_closed_with_its_reason_and_the_others_keep_receiving(
        gateway: RunningGateway) -> None:
    client = gateway.client(MAIN_KEY)
    account = await _account(client)
    number = (await client.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1})
              )["connections"][0]["accounts"][0]["accountNumber"]
    async with Subscription(gateway.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as reader:
        stalled = await _stalled_subscriber(gateway, account)
        await eventually(lambda: _count_is(gateway, 2))
        bus = gateway.app.state.events.bus
        received: list[str] = []

        async def read() -> None:
            while len(received) < 1500:
                received.append((await reader.next())["orderStatusChanged"]["order"]["brokerOrderId"])

        reading = asyncio.create_task(read())
        for batch in range(30):  # 1 500 events of 8 KiB (12 MiB, past the kernel buffers)
            for n in range(50):
                await bus.publish(_event(number, batch * 50 + n))
            await asyncio.sleep(0.02)
        await asyncio.wait_for(reading, 30)
        assert received == [f"ord_burst{n:05d}" for n in range(1500)]  # all, in order
        await eventually(lambda: _count_is(gateway, 1))  # the stalled one was let go
        close = await asyncio.to_thread(_close_frame, stalled)
        assert close is not None and close.code == SLOW_CONSUMER_CODE
        assert "slow consumer" in close.reason and "after" in close.reason


async def test_a_mutations_event_reaches_subscribers_only_after_its_response_was_sent(lemon_url: str) -> None:
    """The bus holds the event before placeOrder answers, but this process's subscribers get it (and
    their executions and writes start) only once the response's last byte was handed to the socket."""
    log: list[str] = []
    gateway = RunningGateway(gateway_config(lemon_connections(lemon_url), events=FAST_EVENTS))
    app = gateway.server.config.app

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                log.append("response sent")
        await app(scope, receive, sending if scope["type"] == "http" else send)

    gateway.server.config.app = recording  # outermost: sees the bytes as they go to uvicorn
    await gateway.start()
    try:
        hub = gateway.app.state.events.bus.hub
        dispatch = hub.dispatch

        def recorded(event: OrderEvent) -> None:
            log.append(f"handed over {event.status.name}")
            dispatch(event)

        hub.dispatch = recorded
        client = gateway.client(MAIN_KEY)
        account = await _account(client)
        log.clear()
        await _place(client, account)
        async def both() -> bool:
            return len(log) >= 2

        await eventually(both)
        assert log[0] == "response sent" and log[1].startswith("handed over"), log
    finally:
        await gateway.stop()
