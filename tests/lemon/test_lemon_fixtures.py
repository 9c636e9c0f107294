"""lemon.markets' documented payloads (fixtures/, one file per endpoint answer, copied from the wire
reference): the adapter's parsing reads each, and the venue answers each endpoint in the same shape.
(``get_portfolio`` is the older API's resource; the venue serves v1's ``positions`` instead.)"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.brokers.lemon import parsing
from gateway.domain import Money, OrderSide, OrderStatus, OrderType
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.lemon import API_KEY
from gateway.sandbox.venue import SandboxRunner
from tests.wire_shape import assert_same_shape

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2022, 11, 21, 11, 0, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_account_fixture_parses_with_cash_in_euro() -> None:
    account = parsing.parse_account("lemon", fixture("get_account.response.json")["results"])
    assert account.account_number == "acc_pyNQNll99hQbXMCS0dRzHyKQCRKYHpy3zg"
    assert account.display_name == "Erika Mustermann" and account.base_currency == "EUR"
    assert account.cash == Money(Decimal("9012.3"), "EUR")  # 90123000 hundredths of a cent


def test_order_fixtures_parse() -> None:
    [first, *_] = fixture("get_orders.response.json")["results"]
    order = parsing.parse_order("lemon", "acc", first)
    assert (order.side, order.type, order.status) == (OrderSide.SELL, OrderType.MARKET, OrderStatus.PENDING_ACTIVATION)
    assert order.instrument.isin == "US19260Q1076" and order.instrument.name == "COINBASE GLOBAL INC."
    one = parsing.parse_order("lemon", "acc", fixture("get_order.response.json")["results"])
    assert one.instrument.isin == "DE0008232125" and one.created_at is not None
    created = parsing.parse_order("lemon", "acc", fixture("post_orders.response.json")["results"])
    assert created.status is OrderStatus.PENDING_ACTIVATION


def test_positions_fixture_parses_in_euro() -> None:
    items = fixture("get_positions.response.json")["results"]
    lufthansa, coinbase = (parsing.parse_position("lemon", "acc", i, NOW) for i in items)
    assert lufthansa.average_price == Money(Decimal("6.61"), "EUR")
    assert lufthansa.market_price == Money(Decimal("6.642"), "EUR")
    assert lufthansa.market_value == Money(Decimal("664.2"), "EUR") and lufthansa.quantity == 100
    assert coinbase.unrealized_pnl == Money(Decimal("87.7") - Decimal("296.5") * 2, "EUR")


@pytest.fixture(scope="module")
async def venue() -> AsyncIterator[httpx.AsyncClient]:
    runner = SandboxRunner(["lemon"], config=EngineConfig.fast())
    base = (await runner.start())["lemon"]
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client
    await runner.stop()


async def test_venue_reads_match_the_fixtures(venue: httpx.AsyncClient) -> None:
    assert_same_shape(fixture("get_account.response.json"), (await venue.get("account")).json())
    assert_same_shape(fixture("get_positions.response.json"), (await venue.get("positions")).json())
    orders = (await venue.get("orders")).json()
    assert orders["results"]
    assert_same_shape(fixture("get_orders.response.json"), orders)
    one = (await venue.get(f"orders/{orders['results'][0]['id']}")).json()
    assert_same_shape(fixture("get_order.response.json"), one)


async def test_venue_writes_match_the_fixtures(venue: httpx.AsyncClient) -> None:
    created = await venue.post("orders", json={**fixture("post_orders.request.json"), "quantity": 1,
                                               "idempotency": "fixture-1"})
    assert created.status_code == 200, created.text
    assert_same_shape(fixture("post_orders.response.json"), created.json())
    order_id = created.json()["results"]["id"]
    activated = await venue.post(f"orders/{order_id}/activate", json=fixture("post_orders_activate.request.json"))
    assert_same_shape(fixture("post_orders_activate.response.json"), activated.json())
    second = (await venue.post("orders", json={**fixture("post_orders.request.json"), "quantity": 1,
                                               "idempotency": "fixture-2"})).json()
    deleted = await venue.delete(f"orders/{second['results']['id']}")
    assert_same_shape(fixture("delete_order.response.json"), deleted.json())


async def test_orders_carry_the_ticker_from_the_market_data(venue: httpx.AsyncClient) -> None:
    from gateway.brokers.lemon.adapter import LemonAdapter
    from gateway.config import ConnectionConfig

    listed = (await venue.get("instruments", params={"isin": "US88160R1014,DE0008232125"})).json()["results"]
    assert {(i["isin"], i["symbol"], i["type"]) for i in listed} == {("US88160R1014", "TL0", "stock"),
                                                                   ("DE0008232125", "LHA", "stock")}
    assert listed[0]["venues"][0]["mic"] == "XMUN"
    config = ConnectionConfig(name="lemon-fx", broker="lemon", base_url=str(venue.base_url),
                              credentials={"api_key": API_KEY})
    adapter = LemonAdapter(config)
    try:
        [account] = await adapter.fetch_accounts()
        orders = await adapter.fetch_orders(account.key)
        assert orders and all(o.instrument.symbol for o in orders)
        tesla = [o for o in orders if o.instrument.isin == "US88160R1014"]
        assert tesla and {o.instrument.symbol for o in tesla} == {"TL0"}
        calls = adapter.upstream_calls()
        await adapter.fetch_orders(account.key)
        assert adapter.upstream_calls() - calls == 1  # the tickers are looked up once: only GET orders again
    finally:
        await adapter.close()
