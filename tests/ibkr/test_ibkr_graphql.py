"""Issue 3 through the gateway: GraphQL over HTTP (documents of queries/) against the IBKR venue
(and the lemon venue beside it), both on loopback. Pacing is relaxed here; the paced Dashboard is
in test_ibkr_graphql_paced.py."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest_asyncio
from ibkr_support import BIG, MASTER, SUBS

from gateway.config import GatewayConfig
from gateway.domain.keys import ConfirmationKey
from gateway.graphql.ids import encode
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner
from tests.harness import GraphQLClient, SandboxControl, eventually, running_gateway

SWITCH = "POST /v1/api/iserver/account"


def gateway_config(runner: SandboxRunner, **ibkr_options: Any) -> GatewayConfig:
    """One connection per running venue (named after it), IBKR options on top of the venue's."""
    connections = {}
    for name, url in runner.base_urls.items():
        venue = runner.venue(name)
        options = dict(venue.options)
        verify = bool(options.pop("verify_tls", True))
        if name == "ibkr":
            options.update(ibkr_options)
        connections[name] = {"broker": name, "base_url": url, "credentials": dict(venue.credentials),
                             "options": options, "verify_tls": verify, "timeout": 5.0}
    return GatewayConfig.model_validate({"profile": "development", "connections": connections})


@dataclass
class Book:
    gql: GraphQLClient
    control: SandboxControl
    accounts: dict[str, str]  # account number → GraphQL id
    groups: dict[str, str]  # group name → GraphQL id
    ibkr_url: str

    async def session(self, **body: Any) -> dict[str, Any]:
        method = "POST" if body else "GET"
        return await self.control._call(method, "/ibkr/session", body or None)

    async def venue_orders(self) -> dict[str, dict[str, Any]]:
        return {o["id"]: o for o in (await self.control.state())["orders"]}


@pytest_asyncio.fixture(scope="module")
async def book() -> AsyncIterator[Book]:
    runner = SandboxRunner(["lemon", "ibkr"], config=EngineConfig.fast(),
                           venue_options={"ibkr": {"pacing": {"enabled": False}}})
    urls = await runner.start()
    try:
        async with running_gateway(gateway_config(runner, orders_repoll_delay=0.05)) as gateway:
            yield Book(gateway.client(), SandboxControl(urls["ibkr"]), {}, {}, urls["ibkr"])
    finally:
        await runner.stop()


async def _dashboard(book: Book, **variables: Any) -> dict[str, Any]:
    data = await book.gql.data("Dashboard", variables or None)
    ibkr = next(c for c in data["connections"] if c["name"] == "ibkr")
    book.accounts.update({a["accountNumber"]: a["id"] for a in ibkr["accounts"]})
    book.groups.update({g["name"]: g["id"] for g in ibkr["allocationGroups"]})
    return ibkr


async def test_ibkr_dashboard_shows_each_sub_accounts_orders_under_it_switching_once_each(book: Book) -> None:
    selected = (await book.session())["selected"]
    await book.control.reset()
    ibkr = await _dashboard(book, positionsFirst=10)
    accounts = {a["accountNumber"]: a for a in ibkr["accounts"]}
    assert set(accounts) == {MASTER, *SUBS} and len(SUBS) >= 20
    stats = await book.control.stats()
    assert stats[SWITCH] == len(accounts) - (1 if selected in accounts else 0)  # one switch per other account

    wire = await book.venue_orders()
    open_wire = {i for i, o in wire.items() if o["status"] in ("pending_new", "working", "partially_filled")}
    shown: set[str] = set()
    for number, account in accounts.items():
        for node in account["orders"]["nodes"]:
            owner = wire[node["brokerOrderId"]]["account"]
            assert owner == number or (number == MASTER and owner in book.groups), (number, node)
            shown.add(node["brokerOrderId"])
    assert open_wire <= shown  # every open order of the book, each under its own account
    with_orders = [n for n, a in accounts.items() if n != MASTER and a["orders"]["totalCount"]]
    assert len(with_orders) >= 10
    group_orders = accounts[MASTER]["orders"]["nodes"]
    assert group_orders and all(wire[o["brokerOrderId"]]["account"] in book.groups for o in group_orders)
    # the demo's details: members, cash (AvailableEquity) of the sub-accounts, positions
    assert {g["method"] for g in ibkr["allocationGroups"]} == {"AVAILABLE_EQUITY", "EQUAL", "NET_LIQUIDATION",
                                                               "CASH_QUANTITY", "PERCENTAGES", "RATIOS", "SHARES"}
    state = await book.control.state()
    sub = accounts[SUBS[0]]
    assert sub["kind"] == "ADVISOR_CLIENT" and accounts[MASTER]["kind"] == "ADVISOR_MASTER"
    assert sub["cash"] == {"amount": f"{Decimal(state['accounts'][SUBS[0]]['cash']):.2f}", "currency": "USD"}
    assert accounts[BIG]["positions"]["totalCount"] == 250


async def test_ibkr_concurrent_account_queries_never_cross(book: Book) -> None:
    if not book.accounts:
        await _dashboard(book, positionsFirst=1)
    wire = await book.venue_orders()
    expected: dict[str, set[str]] = {a: set() for a in SUBS}
    for order_id, o in wire.items():
        if o["account"] in expected and o["status"] == "working":
            expected[o["account"]].add(order_id)
    assert sum(1 for ids in expected.values() if ids) >= 12  # a crossing would show
    rng = random.Random(20)
    for _ in range(3):
        picks = [rng.choice(SUBS) for _ in range(50)]
        bodies = await asyncio.gather(*(book.gql.data("AccountOrders", {"id": book.accounts[a], "first": 100,
                                                                         "filter": {"status": ["SUBMITTED"]}})
                                        for a in picks))
        for acct, body in zip(picks, bodies, strict=True):
            nodes = body["account"]["orders"]["nodes"]
            assert body["account"]["accountNumber"] == acct
            assert all(n["account"]["accountNumber"] == acct for n in nodes), (acct, nodes)
            assert all(wire[n["brokerOrderId"]]["account"] == acct for n in nodes if n["brokerOrderId"] in wire)
            assert expected[acct] <= {n["brokerOrderId"] for n in nodes}


async def test_ibkr_allocation_group_order_fills_and_allocates_by_the_groups_method(book: Book) -> None:
    if not book.groups:
        await _dashboard(book, positionsFirst=1)
    before = await book.control.state()
    placed = (await book.gql.data("PlaceOrder", {"input": {
        "allocationGroupId": book.groups["Fixed_Shares"], "instrument": {"symbol": "MSFT"}, "side": "BUY",
        "type": "MARKET", "quantity": "40"}}))["placeOrder"]
    assert placed["__typename"] == "ConfirmationRequired" and placed["messageIds"] == ["p6"], placed
    confirmed = (await book.gql.data("ConfirmOrder", {"input": {"confirmationId": placed["confirmationId"],
                                                                "accept": True}}))["confirmOrder"]
    assert confirmed["__typename"] == "OrderPlaced", confirmed
    order = confirmed["order"]
    assert order["account"] is None  # placed for the group as a whole

    async def filled() -> dict[str, Any] | None:
        return next((o for o in (await book.control.state())["orders"]
                     if o["id"] == order["brokerOrderId"] and o["status"] == "filled"), None)

    wire = await eventually(filled)
    assert wire["account"] == "Fixed_Shares"
    assert {a: Decimal(q) for a, q in wire["allocation"].items()} == {SUBS[8]: 10, SUBS[9]: 30}  # S: 10 and 30 shares
    after = await book.control.state()

    def msft(state: dict[str, Any], acct: str) -> Decimal:
        return sum((Decimal(p["quantity"]) for p in state["accounts"][acct]["positions"]
                    if p["instrument"] == "MSFT"), Decimal(0))

    assert (msft(after, SUBS[8]) - msft(before, SUBS[8]), msft(after, SUBS[9]) - msft(before, SUBS[9])) == (10, 30)
    read = (await book.gql.data("Order", {"id": order["id"]}))["order"]
    assert read["allocationGroup"]["name"] == "Fixed_Shares" and read["account"] is None
    assert read["status"] == "FILLED"
    group_orders = (await book.gql.post(_GROUP_ORDERS, {"id": book.groups["Fixed_Shares"]})).json()
    assert not group_orders.get("errors"), group_orders
    nodes = group_orders["data"]["node"]["orders"]["nodes"]
    assert order["brokerOrderId"] in {n["brokerOrderId"] for n in nodes}
    assert all(n["allocationGroup"]["name"] == "Fixed_Shares" and n["account"] is None for n in nodes)


_GROUP_ORDERS = """
query GroupOrders($id: ID!) {
  node(id: $id) { ... on AllocationGroup { name orders(first: 100) { nodes { brokerOrderId status
    account { id } allocationGroup { name } } } } }
}
"""


def _limit_order(account: str, limit: str, quantity: str = "3") -> dict[str, Any]:
    return {"input": {"accountId": account, "instrument": {"isin": "US0378331005"}, "side": "BUY", "type": "LIMIT",
                      "quantity": quantity, "limitPrice": limit}}


async def test_ibkr_o163_confirm_places_and_decline_places_nothing(book: Book) -> None:
    if not book.accounts:
        await _dashboard(book, positionsFirst=1)
    far = "205.00"  # AAPL 228.52: more than 3 % away
    asked = (await book.gql.data("PlaceOrder", _limit_order(book.accounts[SUBS[4]], far)))["placeOrder"]
    assert asked["__typename"] == "ConfirmationRequired" and asked["messageIds"] == ["o163"], asked
    assert "Percentage constraint" in asked["messages"][0]
    placed = (await book.gql.data("ConfirmOrder", {"input": {"confirmationId": asked["confirmationId"],
                                                             "accept": True}}))["confirmOrder"]
    assert placed["__typename"] == "OrderPlaced", placed
    assert placed["order"]["limitPrice"] == {"amount": "205.00", "currency": "USD"}
    wire = await book.venue_orders()
    assert wire[placed["order"]["brokerOrderId"]]["client_order_id"] == placed["order"]["clientOrderId"]
    again = (await book.gql.data("ConfirmOrder", {"input": {"confirmationId": asked["confirmationId"],
                                                            "accept": True}}))["confirmOrder"]
    assert again["__typename"] == "OrderPlaced"  # answered once; asked again, the same answer
    assert again["order"]["id"] == placed["order"]["id"]
    assert [o["client_order_id"] for o in (await book.venue_orders()).values()].count(
        placed["order"]["clientOrderId"]) == 1

    count = len(wire)
    asked = (await book.gql.data("PlaceOrder", _limit_order(book.accounts[SUBS[4]], far)))["placeOrder"]
    assert asked["__typename"] == "ConfirmationRequired"
    declined = (await book.gql.data("ConfirmOrder", {"input": {"confirmationId": asked["confirmationId"],
                                                               "accept": False}}))["confirmOrder"]
    assert declined["__typename"] == "ConfirmationDeclined"
    again = (await book.gql.data("ConfirmOrder", {"input": {"confirmationId": asked["confirmationId"],
                                                            "accept": True}}))["confirmOrder"]
    assert again["__typename"] == "ConfirmationDeclined", again  # declined stays declined, nothing placed
    assert len(await book.venue_orders()) == count
    never = encode(ConfirmationKey("ibkr", "never-issued"))
    unknown = (await book.gql.data("ConfirmOrder", {"input": {"confirmationId": never, "accept": True}}))
    assert unknown["confirmOrder"]["__typename"] == "NotFound"  # only a confirmation never issued is unknown


async def test_ibkr_two_concurrent_placements_with_questions_are_both_confirmed_uncrossed(book: Book) -> None:
    if not book.accounts:
        await _dashboard(book, positionsFirst=1)
    wanted = {SUBS[5]: ("5", "204.00"), SUBS[6]: ("7", "203.00")}
    asked = await asyncio.gather(*(book.gql.data("PlaceOrder", _limit_order(book.accounts[a], limit, qty))
                                   for a, (qty, limit) in wanted.items()))
    assert all(a["placeOrder"]["__typename"] == "ConfirmationRequired" for a in asked), asked
    placed = await asyncio.gather(*(book.gql.data("ConfirmOrder", {"input": {
        "confirmationId": a["placeOrder"]["confirmationId"], "accept": True}}) for a in asked))
    wire = await book.venue_orders()
    for (acct, (qty, limit)), body in zip(wanted.items(), placed, strict=True):
        result = body["confirmOrder"]
        assert result["__typename"] == "OrderPlaced", result
        order = result["order"]
        assert order["account"]["id"] == book.accounts[acct]
        assert (Decimal(order["quantity"]), Decimal(order["limitPrice"]["amount"])) == (Decimal(qty), Decimal(limit))
        venue = wire[order["brokerOrderId"]]
        assert (venue["account"], Decimal(venue["quantity"])) == (acct, Decimal(qty))
        assert venue["client_order_id"] == order["clientOrderId"]


async def test_ibkr_250_positions_page_through_relay_cursors(book: Book) -> None:
    if not book.accounts:
        await _dashboard(book, positionsFirst=1)
    seen: list[str] = []
    after = None
    while True:
        data = await book.gql.data("AccountPositions", {"id": book.accounts[BIG], "first": 40, "after": after})
        page = data["account"]["positions"]
        assert page["totalCount"] == 250
        seen.extend(e["node"]["instrument"]["brokerInstrumentId"] for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 250 and len(set(seen)) == 250
    state = await book.control.state()
    assert len([p for p in state["accounts"][BIG]["positions"] if Decimal(p["quantity"]) != 0]) == 250


async def test_ibkr_logged_out_session_is_unauthenticated_while_lemon_answers(book: Book) -> None:
    if not book.accounts:
        await _dashboard(book, positionsFirst=1)
    await book.session(authenticated=False)
    try:
        body = await book.gql.run("Dashboard", {"positionsFirst": 5})
        errors = [e for e in body["errors"] if e["extensions"].get("connection") == "ibkr"]
        assert errors and all(e["extensions"]["code"] == "UNAUTHENTICATED" for e in errors), body["errors"]
        assert not [e for e in body["errors"] if e["extensions"].get("connection") != "ibkr"]
        connections = {c["name"]: c for c in body["data"]["connections"]}
        assert connections["ibkr"]["status"] == "UNAUTHENTICATED" and connections["ibkr"]["accounts"] == []
        assert connections["lemon"]["status"] == "UP" and connections["lemon"]["accounts"]
        assert connections["lemon"]["accounts"][0]["positions"]["nodes"]

        await book.control.reset()
        refused = (await book.gql.data("PlaceOrder", {"input": {
            "accountId": book.accounts[SUBS[0]], "instrument": {"symbol": "AAPL"}, "side": "BUY", "type": "MARKET",
            "quantity": "1"}}))["placeOrder"]
        assert refused["__typename"] == "BrokerUnavailable" and refused["code"] == "UNAUTHENTICATED", refused
        assert not [k for k in await book.control.stats() if k.endswith("/orders") and k.startswith("POST")]
    finally:
        await book.session(authenticated=True)
    placed = (await book.gql.data("PlaceOrder", {"input": {
        "accountId": book.accounts[SUBS[0]], "instrument": {"symbol": "AAPL"}, "side": "BUY", "type": "MARKET",
        "quantity": "1"}}))["placeOrder"]
    assert placed["__typename"] == "OrderPlaced", placed
    status = {c["name"]: c["status"] for c in (await book.gql.data("Dashboard", {"positionsFirst": 1}))["connections"]}
    assert status == {"lemon": "UP", "ibkr": "UP"}
