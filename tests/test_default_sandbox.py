"""The gateway over the default sandbox (what ``serve`` runs: the four venues, one connection each,
the demo's IBKR pacing, the random-walk engine): data is complete across brokers.

* ``positions(filter: {isin})`` finds the holdings of every broker that holds the instrument, IBKR's
  included (its positions carry no ISIN: the filter matches through the conids the ISIN resolves to);
* every order has a ``createdAt`` (IBKR's from the gateway's first sight), so "newest first" holds
  across brokers;
* every money field of a Dashboard answer has its currency's scale: amounts the ISO 4217 minor unit,
  prices the tick precision of the currency's venues.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway.cli import DEMO_VENUE_OPTIONS, sandbox_config
from gateway.sandbox.venue import SandboxRunner
from tests.harness import GraphQLClient, RunningGateway, SandboxControl, running_gateway

AAPL_ISIN = "US0378331005"
#: ISO 4217 minor units of the sandbox's currencies
MINOR_UNIT = {"EUR": 2, "USD": 2, "INR": 2}
#: the sandbox venues' price precision per currency: lemon quotes EUR in 1/10 000 (its wire unit),
#: US listings tick in cents from one dollar up, NSE / BSE listings in 0.05 / 0.10 / 0.01
PRICE_DECIMALS = {"EUR": 4, "USD": 2, "INR": 2}
#: Money fields of the Dashboard document that are prices per unit (the others are amounts)
PRICES = {"averagePrice", "marketPrice", "limitPrice", "stopPrice", "averageFillPrice"}

_ORDERS_PAGE = """
query OrdersPage($after: String) {
  orders(first: 100, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { brokerOrderId createdAt createdAtFirstSeen account { broker } }
  }
}
"""


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[tuple[SandboxRunner, RunningGateway]]:
    runner = SandboxRunner(["lemon", "ibkr", "etna", "aliceblue"], venue_options=DEMO_VENUE_OPTIONS)
    await runner.start()
    try:
        async with running_gateway(sandbox_config(runner)) as gateway:
            yield runner, gateway
    finally:
        await runner.stop()


async def test_isin_filter_finds_the_holdings_of_every_broker_that_holds_it(sandbox: tuple[SandboxRunner, Any]) -> None:
    runner, gateway = sandbox
    client: GraphQLClient = gateway.client()
    accounts = {(a["broker"], a["accountNumber"]) for a in (await client.post(
        "{ accounts { broker accountNumber } }")).json()["data"]["accounts"]}
    expected = set()
    for name, url in runner.base_urls.items():
        state = await SandboxControl(url).state()
        for number, account in state["accounts"].items():
            if any(p["isin"] == AAPL_ISIN and Decimal(p["quantity"]) != 0 for p in account["positions"]):
                if (name.upper(), number) in accounts:
                    expected.add((name.upper(), number))
    assert {b for b, _ in expected} == {"LEMON", "IBKR", "ETNA"}  # Alice Blue has no Apple
    body = await client.run("Positions", {"first": 100, "filter": {"isin": AAPL_ISIN}})
    assert not body.get("errors"), body["errors"]
    nodes = body["data"]["positions"]["nodes"]
    found = {(n["account"]["broker"], n["account"]["accountNumber"]) for n in nodes}
    assert found == expected and body["data"]["positions"]["totalCount"] == len(expected)
    assert all(n["instrument"]["isin"] == AAPL_ISIN for n in nodes)
    ibkr = {n["instrument"]["brokerInstrumentId"] for n in nodes if n["account"]["broker"] == "IBKR"}
    assert ibkr == {"265598"}  # AAPL's conid: matched through the ISIN's look-up, not by a symbol


async def test_every_order_has_a_created_at_and_the_list_is_newest_first(sandbox: tuple[SandboxRunner, Any]) -> None:
    _, gateway = sandbox
    client: GraphQLClient = gateway.client()
    nodes: list[dict[str, Any]] = []
    after = None
    for _ in range(20):
        body = (await client.post(_ORDERS_PAGE, {"after": after})).json()
        assert not body.get("errors"), body["errors"]
        page = body["data"]["orders"]
        nodes.extend(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(nodes) == page["totalCount"]
    assert {n["account"]["broker"] for n in nodes if n["account"]} >= {"LEMON", "IBKR", "ETNA"}  # Alice Blue: an empty day book
    missing = [n for n in nodes if n["createdAt"] is None]
    assert not missing, missing[:3]
    ibkr = [n for n in nodes if n["account"] is None or n["account"]["broker"] == "IBKR"]
    assert ibkr and all(n["createdAtFirstSeen"] for n in ibkr)  # IBKR reports none: marked
    assert not any(n["createdAtFirstSeen"] for n in nodes if n not in ibkr)
    created = [datetime.fromisoformat(n["createdAt"]) for n in nodes]
    assert created == sorted(created, reverse=True)


def _money(node: Any, field: str = "") -> list[tuple[str, dict[str, str]]]:
    if isinstance(node, dict):
        if set(node) == {"amount", "currency"}:
            return [(field, node)]
        return [m for key, value in node.items() for m in _money(value, key)]
    if isinstance(node, list):
        return [m for item in node for m in _money(item, field)]
    return []


async def test_dashboard_money_has_its_currencys_scale(sandbox: tuple[SandboxRunner, Any]) -> None:
    _, gateway = sandbox
    body = await gateway.client().run("Dashboard")
    assert not body.get("errors"), body["errors"]
    money = _money(body["data"])
    kinds = {field for field, _ in money}
    assert {"cash", "marketValue", "unrealizedPnl", "averagePrice", "marketPrice", "limitPrice"} <= kinds
    assert {m["currency"] for _, m in money} == {"EUR", "USD", "INR"}
    wrong = []
    for field, m in money:
        decimals = -Decimal(m["amount"]).as_tuple().exponent
        expected = PRICE_DECIMALS[m["currency"]] if field in PRICES else MINOR_UNIT[m["currency"]]
        if field in PRICES and m["currency"] == "USD" and abs(Decimal(m["amount"])) < 1:
            expected = 4  # sub-dollar US prices tick in 0.0001
        if decimals != expected:
            wrong.append((field, m))
    assert not wrong, wrong[:10]
