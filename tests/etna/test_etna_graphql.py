"""ETNA through the gateway (GraphQL over HTTP): the Dashboard beside lemon, filters that equal a
local filter of the full list, Relay windows read as ETNA pages, and an upstream budget that does
not grow with the size of an account. Nothing here writes: the venue stays as seeded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from etna_gateway import EtnaGateway, etna_gateway, gateway_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain import OrderSide, OrderStatus
from tests.harness import GraphQLClient, running_gateway

OPEN = ["PENDING_ACTIVATION", "PENDING_SUBMIT", "SUBMITTED", "PARTIALLY_FILLED", "PENDING_CANCEL"]
OPEN_SIM = {"inactive", "pending_new", "working", "partially_filled", "cancel_pending"}
INJECTIONS = ["A' or Symbol = 'B", "AAPL' or '1'='1", "'", "AAPL'--", "' or Quantity > 0 and Symbol <> '",
              "AAPL') or (1=1", "#2020-01-01#"]
SYMBOLS = ["AAPL", "aapl", "MSFT", "SPY", "NVDA", "META", "QQQ", "IBM", "GOOGL", "AMZN", "TSLA", "XYZ"]
BOUNDED = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
ORDER_ID_BASE = 80_300  # the venue's wire order Id = this + the engine's id

_WINDOW = """
query AccountOrders($id: ID!, $first: Int, $after: String, $filter: OrderFilter) {
  account(id: $id) { orders(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor } nodes { brokerOrderId createdAt } } }
}
"""
_COLD = """
query Cold {
  connections { accounts { positions { totalCount nodes { instrument { brokerInstrumentId exchange } } }
    orders(first: 50, filter: {status: [SUBMITTED]}) { nodes { instrument { symbol brokerInstrumentId } } } } }
}
"""


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[EtnaGateway]:
    async with etna_gateway() as running:
        yield running


@pytest.fixture(scope="module")
async def full(env: EtnaGateway) -> dict[str, list[dict[str, Any]]]:
    """Every order and position the ``etna`` connection has, through the gateway, unfiltered."""
    orders = (await env.etna.data("Orders", {"first": 100}))["orders"]
    positions = (await env.etna.data("Positions", {"first": 100}))["positions"]
    assert orders["totalCount"] == len(orders["edges"]) == 48 and positions["totalCount"] == len(positions["nodes"])
    return {"orders": [e["node"] for e in orders["edges"]], "positions": positions["nodes"]}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_dashboard_shows_both_etna_accounts_beside_lemon(env: EtnaGateway) -> None:
    data = await env.all.data("Dashboard", {"positionsFirst": 100, "ordersFirst": 100})
    state = await env.control.state()
    connections = {c["name"]: c for c in data["connections"]}
    assert set(connections) == {"etna", "etna-large", "lemon"}
    assert all(c["status"] == "UP" for c in connections.values())
    assert connections["etna"]["broker"] == "ETNA" and connections["lemon"]["broker"] == "LEMON"
    (lemon,) = connections["lemon"]["accounts"]
    assert lemon["positions"]["totalCount"] > 0 and lemon["positions"]["nodes"][0]["instrument"]["isin"]

    accounts = connections["etna"]["accounts"]
    assert [a["accountNumber"] for a in accounts] == ["6303", "6304"]
    for account in accounts:
        number = account["accountNumber"]
        assert account["displayName"] == f"{number} (Jane Doe)"
        held = {p["instrument"]: Decimal(p["quantity"]) for p in state["accounts"][number]["positions"]
                if Decimal(p["quantity"]) != 0}
        shown = {p["instrument"]["symbol"]: Decimal(p["quantity"]) for p in account["positions"]["nodes"]}
        assert shown == held and account["positions"]["totalCount"] == len(held)
        for p in account["positions"]["nodes"]:
            assert p["instrument"]["currency"] == "USD" and p["instrument"]["brokerInstrumentId"]
            assert Decimal(p["marketValue"]["amount"]) == Decimal(p["quantity"]) * Decimal(p["marketPrice"]["amount"])
        open_orders = {str(ORDER_ID_BASE + int(o["id"])): o["instrument"] for o in state["orders"]
                       if o["account"] == number and o["status"] in OPEN_SIM}
        nodes = account["orders"]["nodes"]
        assert open_orders and {n["brokerOrderId"]: n["instrument"]["symbol"] for n in nodes} == open_orders
        assert account["orders"]["totalCount"] == len(open_orders)
        created = [_time(n["createdAt"]) for n in nodes]
        assert created == sorted(created, reverse=True)  # newest first
        assert all(n["status"] in OPEN and n["instrument"]["name"] for n in nodes)


async def test_dashboard_upstream_calls_do_not_grow_with_account_size(env: EtnaGateway) -> None:
    await env.all.data("Dashboard")  # warm: tokens and the securities of the orders shown
    await env.control.reset()
    data = await env.all.data("Dashboard")
    stats = await env.control.stats()
    large = next(c for c in data["connections"] if c["name"] == "etna-large")["accounts"][0]
    small = next(c for c in data["connections"] if c["name"] == "etna")["accounts"][0]
    assert large["positions"]["totalCount"] == 150 and len(large["positions"]["nodes"]) == 50
    assert large["positions"]["pageInfo"]["hasNextPage"]
    assert large["orders"]["totalCount"] > 50 and len(large["orders"]["nodes"]) == 50
    assert small["orders"]["totalCount"] < 10 and small["positions"]["totalCount"] == 5
    for account in ("6303", "6304", "6320"):  # 5 vs 150 positions, 24 vs 300 orders: one page each
        assert stats[f"GET /api/v1.0/accounts/{account}/positions"] == 1
        assert stats[f"GET /api/v1.0/accounts/{account}/orders"] == 1
    assert stats["GET /api/v1.0/users/@me/accounts"] == 2  # one per ETNA connection
    for account in ("6303", "6304", "6320"):
        assert stats[f"GET /api/v1.0/accounts/{account}/info"] == 1  # the account's cash
    assert sum(stats.values()) == 11  # and nothing else: no security look-ups once warm


async def test_cold_start_looks_up_only_the_securities_shown_once_each(env: EtnaGateway) -> None:
    async with running_gateway(gateway_config(env.runner, only=("etna-large",))) as cold:
        await env.control.reset()
        body = (await cold.client().post(_COLD)).json()
        assert not body.get("errors"), body["errors"]
        stats = await env.control.stats()
    account = body["data"]["connections"][0]["accounts"][0]
    nodes = account["orders"]["nodes"]
    assert len(nodes) == 50 and all(n["instrument"]["symbol"] for n in nodes)
    looked_up = {path.rsplit("/", 1)[1]: n for path, n in stats.items() if "/equities/" in path}
    held = account["positions"]["nodes"]
    assert len(held) == 50 and all(p["instrument"]["exchange"] for p in held)  # positions lack it: looked up
    shown = {n["instrument"]["brokerInstrumentId"] for n in nodes + held}
    assert set(looked_up) == shown
    assert set(looked_up.values()) == {1}  # concurrent readers of one security share one request
    assert stats["GET /api/v1.0/accounts/6320/orders"] == stats["GET /api/v1.0/accounts/6320/positions"] == 1


def _order_matches(f: dict[str, Any], node: dict[str, Any]) -> bool:
    if f.get("status") and node["status"] not in f["status"]:
        return False
    if f.get("side") and node["side"] != f["side"]:
        return False
    if f.get("symbol") is not None and (node["instrument"]["symbol"] or "").upper() != f["symbol"].upper():
        return False
    created = _time(node["createdAt"])
    if f.get("createdAfter") and created < _time(f["createdAfter"]):
        return False
    return not (f.get("createdBefore") and created > _time(f["createdBefore"]))


def _times(full_orders: list[dict[str, Any]]) -> st.SearchStrategy[str | None]:
    created = [_time(o["createdAt"]) for o in full_orders]
    near = st.builds(lambda t, us: t + timedelta(microseconds=us), st.sampled_from(created),
                     st.integers(min_value=-1_500_000, max_value=1_500_000))
    whole = st.builds(lambda t: t.replace(microsecond=0), st.sampled_from(created))
    return st.one_of(st.none(), near.map(datetime.isoformat), whole.map(datetime.isoformat))


@given(data=st.data())
@BOUNDED
async def test_orders_filter_through_gateway_equals_local_filter(env: EtnaGateway, full: dict, data: st.DataObject
                                                                 ) -> None:
    times = _times(full["orders"])
    candidate = {
        "status": data.draw(st.lists(st.sampled_from([s.name for s in OrderStatus]), max_size=3, unique=True)),
        "side": data.draw(st.one_of(st.none(), st.sampled_from([s.name for s in OrderSide]))),
        "symbol": data.draw(st.one_of(st.none(), st.sampled_from(SYMBOLS + INJECTIONS))),
        "createdAfter": data.draw(times), "createdBefore": data.draw(times),
    }
    f = {k: v for k, v in candidate.items() if v not in (None, [])}
    body = await env.etna.run("Orders", {"first": 100, "filter": f})
    assert not body.get("errors"), body["errors"]
    got = [e["node"]["brokerOrderId"] for e in body["data"]["orders"]["edges"]]
    assert got == [o["brokerOrderId"] for o in full["orders"] if _order_matches(f, o)]
    assert body["data"]["orders"]["totalCount"] == len(got)


@given(data=st.data())
@BOUNDED
async def test_positions_filter_through_gateway_equals_local_filter(env: EtnaGateway, full: dict,
                                                                    data: st.DataObject) -> None:
    quantities = st.one_of(st.none(), st.sampled_from(["-20", "0", "10", "12", "15.5", "25", "150", "200"]))
    candidate = {"symbol": data.draw(st.one_of(st.none(), st.sampled_from(SYMBOLS + INJECTIONS))),
                 "minQuantity": data.draw(quantities), "maxQuantity": data.draw(quantities),
                 "isin": data.draw(st.one_of(st.none(), st.just("US0378331005")))}
    f = {k: v for k, v in candidate.items() if v is not None}

    def matches(p: dict[str, Any]) -> bool:
        q = Decimal(p["quantity"])
        return ((f.get("symbol") is None or p["instrument"]["symbol"].upper() == f["symbol"].upper())
                and (f.get("isin") is None or (p["instrument"]["isin"] or "") == f["isin"])
                and (f.get("minQuantity") is None or q >= Decimal(f["minQuantity"]))
                and (f.get("maxQuantity") is None or q <= Decimal(f["maxQuantity"])))

    body = await env.etna.run("Positions", {"first": 100, "filter": f})
    assert not body.get("errors"), body["errors"]
    assert [p["id"] for p in body["data"]["positions"]["nodes"]] == [p["id"] for p in full["positions"] if matches(p)]


@pytest.mark.parametrize("symbol", INJECTIONS)
async def test_symbol_injection_matches_nothing_and_does_not_error(env: EtnaGateway, symbol: str) -> None:
    await env.control.reset()
    orders = await env.etna.data("Orders", {"filter": {"symbol": symbol}})
    positions = await env.etna.data("Positions", {"filter": {"symbol": symbol}})
    assert orders["orders"]["totalCount"] == 0 and orders["orders"]["edges"] == []
    assert positions["positions"]["totalCount"] == 0 and positions["positions"]["nodes"] == []
    stats = await env.control.stats()
    assert stats["GET /api/v1.0/accounts/6303/orders"] == 1  # sent to ETNA as one literal, answered 200


@pytest.mark.parametrize(("flt", "first"), [(None, 7), ({"status": OPEN}, 2), ({"side": "BUY"}, 9),
                                            ({"status": ["FILLED"], "symbol": "aapl"}, 1)])
async def test_account_order_windows_follow_cursors_without_gaps(env: EtnaGateway, flt: dict | None,
                                                                 first: int) -> None:
    client: GraphQLClient = env.etna
    dashboard = await client.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1})
    account_id = dashboard["connections"][0]["accounts"][1]["id"]
    whole = await client.post(_WINDOW, {"id": account_id, "first": 100, "filter": flt})
    expected = [n["brokerOrderId"] for n in whole.json()["data"]["account"]["orders"]["nodes"]]
    seen: list[str] = []
    after = None
    while True:
        body = (await client.post(_WINDOW, {"id": account_id, "first": first, "after": after, "filter": flt})).json()
        assert not body.get("errors"), body["errors"]
        page = body["data"]["account"]["orders"]
        assert page["totalCount"] == len(expected)
        seen.extend(n["brokerOrderId"] for n in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected and len(set(seen)) == len(seen)


async def test_positions_of_the_large_account_page_through_all_150(env: EtnaGateway) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = (await env.large.data("Positions", {"first": 40, "after": after}))["positions"]
        assert page["totalCount"] == 150
        seen.extend(n["instrument"]["symbol"] for n in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 150 and seen == sorted(seen)
    orders = (await env.large.data("Orders", {"first": 100}))["orders"]
    assert orders["totalCount"] == 300 and len(orders["edges"]) == 100
    created = [_time(e["node"]["createdAt"]) for e in orders["edges"]]
    assert created == sorted(created, reverse=True)
