"""IBKR's documented payloads (fixtures/, one file per endpoint answer, from the wire reference):
the adapter's parsing reads each, and the venue answers each endpoint in the same shape."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from ibkr_support import SUBS, until

from gateway.brokers.ibkr.parsing import (
    parse_account,
    parse_allocation_group,
    parse_live_order,
    parse_order_status,
    parse_position,
)
from gateway.domain import AccountKind, AllocationMethod, AssetClass, Money, OrderSide, OrderStatus, OrderType
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner
from tests.wire_shape import assert_same_shape

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.response.json").read_text())


# -- the adapter's parsing ------------------------------------------------------------------
def test_live_order_fixture_parses_with_money_in_the_cash_currency() -> None:
    [item] = fixture("get_iserver_account_orders")["orders"]
    order = parse_live_order("ib", item, frozenset())
    assert (order.key.account_number, order.key.broker_order_id) == ("U1234567", "1234568790")
    assert (order.side, order.type, order.status) == (OrderSide.SELL, OrderType.MARKET, OrderStatus.FILLED)
    assert order.quantity == order.filled_quantity == Decimal(5) and order.client_order_id == "Order123"
    assert order.average_fill_price == Money(Decimal("192.26"), "USD")
    assert order.instrument.exchange == "XNAS" and order.instrument.broker_instrument_id == "265598"
    assert order.updated_at == datetime.fromtimestamp(1702317649, UTC) and order.created_at is None


def test_order_status_fixture_parses() -> None:
    order = parse_order_status("ib", "U1234567", fixture("get_iserver_account_order_status"), frozenset())
    assert (order.status, order.side, order.quantity, order.filled_quantity) == \
        (OrderStatus.FILLED, OrderSide.SELL, Decimal(5), Decimal(5))
    assert order.average_fill_price == Money(Decimal("192.26"), "USD")


def test_order_status_without_currency_keeps_its_fill_price_in_the_instruments_currency() -> None:
    body = fixture("get_iserver_account_order_status.no_currency")
    assert "currency" not in body and body["avg_fill_price"] == "192.26"
    order = parse_order_status("ib", "U1234567", body, frozenset())
    assert order.average_fill_price == Money(Decimal("192.26"), "USD")  # NASDAQ.NMS trades in USD
    assert order.filled_quantity == Decimal(1) and order.side is OrderSide.BUY
    given = parse_order_status("ib", "U1234567", {**body, "listing_exchange": "IBIS"}, frozenset(), currency="EUR")
    assert given.average_fill_price == Money(Decimal("192.26"), "EUR")  # the caller's instrument currency wins


def test_positions_fixture_parses_each_asset_class_and_etf_type() -> None:
    items = fixture("get_portfolio_positions")
    positions = [parse_position("ib", "DU123456", i, NOW) for i in items]
    classes = {p.instrument.broker_instrument_id: p.instrument.asset_class for p in positions}
    assert set(classes.values()) == {AssetClass.CRYPTO, AssetClass.OPTION, AssetClass.STOCK}
    ibm = next(p for p in positions if p.instrument.symbol == "IBM")
    assert ibm.instrument.name == "INTL BUSINESS MACHINES CORP" and ibm.instrument.exchange == "XNYS"
    assert ibm.market_value == Money(Decimal("261468.5"), "USD") and ibm.instrument.isin is None
    raw_ibm = next(i for i in items if i["contractDesc"] == "IBM")
    etf = parse_position("ib", "DU123456", {**raw_ibm, "type": "ETF", "ticker": "SPY"}, NOW)
    assert etf.instrument.asset_class is AssetClass.ETF  # assetClass STK, type ETF


def test_instruments_parsed_again_are_the_same_and_odd_wire_fields_still_parse() -> None:
    """Instruments come from a cache keyed on the wire fields (types included); a field the wire
    sends as a list (not a cache key) still parses."""
    raw_ibm = next(i for i in fixture("get_portfolio_positions") if i["contractDesc"] == "IBM")
    first, again = (parse_position("ib", "DU123456", raw_ibm, NOW) for _ in range(2))
    assert again.instrument is first.instrument
    assert parse_position("ib", "DU123457", {**raw_ibm, "conid": "8314"}, NOW).instrument.broker_instrument_id == "8314"
    as_float = parse_position("ib", "DU123456", {**raw_ibm, "conid": 8314.0}, NOW)
    assert as_float.instrument.broker_instrument_id == "8314.0"  # never the cached instrument of conid 8314
    listed = parse_position("ib", "DU123456", {**raw_ibm, "name": ["INTL", "BUSINESS"]}, NOW)
    assert listed.instrument.name == ["INTL", "BUSINESS"] and listed.instrument.symbol == "IBM"


def test_accounts_and_allocation_group_fixtures_parse() -> None:
    [item] = fixture("get_portfolio_accounts")
    account = parse_account("ib", item, AccountKind.ADVISOR_CLIENT)
    assert (account.account_number, account.base_currency, account.display_name) == \
        ("DU123456", "USD", "John Smith, LLC")
    group = parse_allocation_group("ib", fixture("post_iserver_account_allocation_group_single"), "DF1")
    assert group.method is AllocationMethod.RATIOS and [m.amount for m in group.members] == [1, 5]


# -- the venue answers in the documented shapes ---------------------------------------------
@pytest.fixture(scope="module")
async def venue() -> AsyncIterator[httpx.AsyncClient]:
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast())
    base = (await runner.start())["ibkr"]
    async with httpx.AsyncClient(base_url=base) as client:
        await client.post(base.split("/v1/api/")[0] + "/__sandbox__/ibkr/pacing", json={"enabled": False})
        yield client
    await runner.stop()


async def test_venue_session_answers_match_the_fixtures(venue: httpx.AsyncClient) -> None:
    assert_same_shape(fixture("post_iserver_auth_status"), (await venue.post("iserver/auth/status")).json())
    # the venue's authStatus carries hardware_info (as a recorded tickle does) and fail
    assert_same_shape(fixture("post_tickle"), (await venue.post("tickle")).json(), extra={"hardware_info", "fail"})


async def test_venue_accounts_answer_matches_the_fixture(venue: httpx.AsyncClient) -> None:
    documented = fixture("get_iserver_accounts")
    answer = (await venue.get("iserver/accounts")).json()
    # maps keyed by account id compare by their values; the recordings spell noFXConv (ibkr.md §3.1)
    props = {("noFXConv" if k == "noFxConv" else k): v for k, v in next(iter(documented["acctProps"].values())).items()}
    for value in answer["acctProps"].values():
        assert_same_shape(props, value, extra={"isProp"})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in answer["aliases"].items())
    assert_same_shape({k: v for k, v in documented.items() if k not in ("acctProps", "aliases")},
                      {k: v for k, v in answer.items() if k not in ("acctProps", "aliases")})
    assert set(answer["chartPeriods"]) == set(documented["chartPeriods"])
    assert set(answer["allowFeatures"]) >= set(documented["allowFeatures"])


async def test_venue_order_answers_match_the_fixtures(venue: httpx.AsyncClient) -> None:
    account = SUBS[6]
    await venue.get("iserver/accounts")
    assert_same_shape(fixture("post_iserver_account"), (await venue.post("iserver/account", json={"acctId": account})).json())
    order = {"conid": 265598, "orderType": "LMT", "price": 1.0, "side": "BUY", "tif": "GTC", "quantity": 1,
             "cOID": "fixture-far"}
    question = (await venue.post(f"iserver/account/{account}/orders", json={"orders": [order]})).json()
    assert_same_shape(fixture("post_iserver_account_orders.question"), question, extra={"messageOptions"})
    accepted = (await venue.post(f"iserver/reply/{question[0]['id']}", json={"confirmed": True})).json()
    assert_same_shape(fixture("post_iserver_reply"), accepted)
    market = {"conid": 265598, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1, "cOID": "fixture-mkt"}
    placed = (await venue.post(f"iserver/account/{account}/orders", json={"orders": [market]})).json()
    assert_same_shape(fixture("post_iserver_account_orders"), placed)
    aggressive = {**order, "price": 1000.0, "cOID": "fixture-aggressive"}
    reject = (await venue.post(f"iserver/account/{account}/orders", json={"orders": [aggressive]})).json()
    assert_same_shape(fixture("post_iserver_account_orders.reject"), reject)

    items: dict[str, dict[str, Any]] = {}

    async def both() -> bool:
        listed = (await venue.get("iserver/account/orders")).json()["orders"]
        items.update({i["order_ref"]: i for i in listed if i.get("order_ref", "").startswith("fixture-")})
        return len(items) == 2 and items["fixture-mkt"]["status"] == "Filled"

    await until(both)
    [documented] = fixture("get_iserver_account_orders")["orders"]
    # a filled market order: the documented item plus isEventTrading / price (a recorded one has both)
    assert_same_shape(documented, items["fixture-mkt"], extra={"isEventTrading", "price"})
    working = items["fixture-far"]
    assert working["outsideRTH"] is False and working["price"] == "1.00" and "avgPrice" not in working
    status = (await venue.get(f"iserver/account/order/status/{placed[0]['order_id']}")).json()
    assert_same_shape(fixture("get_iserver_account_order_status"), status)
    cancel = (await venue.delete(f"iserver/account/{account}/order/{accepted[0]['order_id']}")).json()
    assert_same_shape(fixture("delete_iserver_account_order"), cancel)


async def test_venue_portfolio_answers_match_the_fixtures(venue: httpx.AsyncClient) -> None:
    assert_same_shape(fixture("get_portfolio_accounts"), (await venue.get("portfolio/accounts")).json())
    stock = next(i for i in fixture("get_portfolio_positions") if i["assetClass"] == "STK")
    positions = (await venue.get(f"portfolio/{SUBS[0]}/positions/0")).json()
    assert_same_shape(None, positions, element=stock)
    assert_same_shape(fixture("get_iserver_account_allocation_group"),
                      (await venue.get("iserver/account/allocation/group")).json())
    single = (await venue.post("iserver/account/allocation/group/single", json={"name": "Family_Ratio"})).json()
    assert_same_shape(fixture("post_iserver_account_allocation_group_single"), single)
    assert_same_shape(fixture("get_iserver_account_allocation_accounts"),
                      (await venue.get("iserver/account/allocation/accounts")).json())
