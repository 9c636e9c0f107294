"""What a subscription promises (docs/subscriptions.md), over real WebSocket and SSE connections:
a new subscriber hears only of changes after it started, each event carries the broker's time for the
change, and an id that names nothing ends the subscription at once with ``NOT_FOUND``."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import FAST_EVENTS, MAIN_KEY, gateway_config, lemon_connections
from tests.harness import GraphQLClient, RunningGateway, Subscription, document, eventually, running_gateway
from tests.harness import first_account as _account
from tests.harness import place_market_buy as _place


@pytest.fixture
async def fresh(lemon_url: str) -> AsyncIterator[RunningGateway]:
    """A gateway of its own: no watcher has seen the account before the test."""
    async with running_gateway(gateway_config(lemon_connections(lemon_url), events=FAST_EVENTS)) as gateway:
        yield gateway




async def _status(client: GraphQLClient, order_id: str) -> str:
    return str((await client.data("Order", {"id": order_id}))["order"]["status"])


async def _watchers(gateway: RunningGateway) -> int:
    async with httpx.AsyncClient() as http:
        return int((await http.get(gateway.url.replace("/graphql", "/healthz"))).json()["watchers"])


async def _finished_orders(client: GraphQLClient, account: str) -> list[str]:
    """A filled market order and a cancelled limit order, placed while nobody subscribes."""
    filled = await _place(client, account)
    open_ = await _place(client, account, type="LIMIT", limitPrice="1.00")
    await client.data("CancelOrder", {"input": {"orderId": open_["id"]}})
    await eventually(lambda: _is(client, filled["id"], "FILLED"))
    await eventually(lambda: _is(client, open_["id"], "CANCELED"))
    return [filled["id"], open_["id"]]


async def _is(client: GraphQLClient, order_id: str, status: str) -> bool:
    return await _status(client, order_id) == status


async def test_a_new_subscriber_hears_only_of_changes_after_it_started_each_at_the_brokers_time(
        fresh: RunningGateway) -> None:
    client = fresh.client(MAIN_KEY)
    account = await _account(client)
    # orders finish while nobody watches: the gateway saw only their placement (its own mutation)
    await _finished_orders(client, account)
    async with Subscription(fresh.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as sub:
        await eventually(lambda: _watchers(fresh))
        assert await sub.quiet(1.2) == []  # several polls later: the baseline is no burst of old news
    await eventually(lambda: _no_watchers(fresh))
    # a watcher that stopped and starts again takes a fresh baseline too
    await _finished_orders(client, account)
    async with Subscription(fresh.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as sub:
        await eventually(lambda: _watchers(fresh))
        assert await sub.quiet(1.2) == []
        order = await _place(client, account)
        events = await sub.until(lambda e: e["order"]["id"] == order["id"] and e["status"] == "FILLED")
        assert {e["order"]["id"] for e in events} == {order["id"]}
        filled = events[-1]
        # lemon reports executed_at: the event is stamped with it, and the receipt time comes apart
        assert filled["atSource"] == "BROKER"
        assert filled["at"] == filled["order"]["updatedAt"]
        assert _time(filled["at"]) <= _time(filled["receivedAt"])
        for event in events:
            assert event["atSource"] == "BROKER" and event["at"] == event["order"]["updatedAt"], event


async def _no_watchers(gateway: RunningGateway) -> bool:
    return await _watchers(gateway) == 0


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _id(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts), separators=(",", ":")).encode()).decode().rstrip("=")


def _unknown_ids(account: str) -> list[dict[str, str]]:
    """An account number the connection does not have, an order id the broker does not have (in a real
    account), and one in an unknown account."""
    _, connection, number = json.loads(base64.urlsafe_b64decode(account + "=" * (-len(account) % 4)))
    return [{"accountId": _id("Account", connection, "no-such-account")},
            {"orderId": _id("Order", connection, number, "ord_doesnotexist")},
            {"accountId": account, "orderId": _id("Order", connection, number, "ord_doesnotexist")},
            {"orderId": _id("Order", connection, "no-such-account", "ord_x")}]


async def test_unknown_account_or_order_ends_the_websocket_subscription_with_not_found(
        fresh: RunningGateway) -> None:
    client = fresh.client(MAIN_KEY)
    account = await _account(client)
    async with Subscription(fresh.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as sub:
        for n, variables in enumerate(_unknown_ids(account)):
            op = f"unknown-{n}"
            await sub.ws.send(json.dumps({"id": op, "type": "subscribe", "payload": {
                "query": document("OrderStatusChanged"), "variables": variables}}))
            messages = []
            while True:
                message = json.loads(await asyncio.wait_for(sub.ws.recv(), 5))
                if message.get("id") == op:
                    messages.append(message)
                    if message["type"] in ("complete", "error"):
                        break
            first = messages[0]
            errors = first["payload"]["errors"] if first["type"] == "next" else first["payload"]
            assert errors[0]["extensions"]["code"] == "NOT_FOUND", (variables, messages)
            assert first["type"] == "error" or messages[-1]["type"] == "complete"  # ended, not left waiting


async def test_unknown_account_or_order_ends_the_sse_subscription_with_not_found(fresh: RunningGateway) -> None:
    account = await _account(fresh.client(MAIN_KEY))
    for variables in _unknown_ids(account):
        body = {"query": document("OrderStatusChanged"), "variables": variables}
        kinds: list[str] = []
        payloads: list[Any] = []
        async with httpx.AsyncClient(timeout=10) as http, http.stream(
                "POST", fresh.url + "/stream", json=body,
                headers={"Accept": "text/event-stream", "Authorization": f"Bearer {MAIN_KEY}"}) as response:
            assert response.status_code == 200
            kind = None
            async for line in response.aiter_lines():  # the stream must end by itself
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                    kinds.append(kind)
                elif line.startswith("data:") and kind == "next":
                    payloads.append(json.loads(line[5:]))
        assert kinds == ["next", "complete"], (variables, kinds)
        assert payloads[0]["errors"][0]["extensions"]["code"] == "NOT_FOUND", (variables, payloads)
