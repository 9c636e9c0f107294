"""Alice Blue's documented payloads (fixtures/, one file per endpoint answer, copied from the wire
reference): the adapter's parsing reads each, and the venue answers each endpoint in the same shape."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.brokers.aliceblue.parsing import parse_order
from gateway.brokers.aliceblue.positions import merge_positions
from gateway.domain import Money, OrderStatus, OrderType, Product
from tests.wire_shape import assert_same_shape

if TYPE_CHECKING:
    from conftest import AliceEnv

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2025, 5, 26, 12, 0, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_order_book_fixture_parses_open_complete_and_rejected() -> None:
    rows = fixture("get_orders_book.response.json")["result"]
    orders = [parse_order(r, "ab") for r in rows]
    assert [o.status for o in orders] == [OrderStatus.SUBMITTED, OrderStatus.FILLED, OrderStatus.REJECTED]
    open_, filled, rejected = orders
    assert open_.limit_price == Money(Decimal("1120.1"), "INR") and open_.client_order_id == "gw-1"
    assert open_.product is Product.LONGTERM and open_.type is OrderType.LIMIT
    assert filled.average_fill_price == Money(Decimal("6.95"), "INR") and filled.filled_quantity == 1
    assert rejected.notes and rejected.notes.startswith("ORA:Price 1120.15 is not a multiple of tick size")
    [history] = fixture("post_orders_history.response.json")["result"]
    assert parse_order(history, "ab").status is OrderStatus.REJECTED


def test_holdings_and_positions_fixtures_merge_into_positions() -> None:
    holdings = [(r, Product.LONGTERM) for r in fixture("get_holdings.response.json")["result"]]
    lines = fixture("get_positions.response.json")["result"]
    [idea] = merge_positions(holdings, lines, "ab", "912444", NOW, lambda exchange, token: "INE669E01016")
    assert idea.product is Product.LONGTERM and idea.instrument.isin == "INE669E01016"
    assert idea.instrument.exchange == "NSE" and idea.instrument.broker_instrument_id == "14366"
    assert idea.quantity == Decimal(37)  # the DEMAT holding (dpQuantity 36) + the day's net 1 (a CNC line)


async def _session(env: AliceEnv) -> dict[str, str]:
    c = env.credentials
    checksum = hashlib.sha256((c["user_id"] + c["auth_code"] + c["api_secret"]).encode()).hexdigest()
    body = (await env.http.post(env.base_url + "vendor/getUserDetails", json={"checkSum": checksum})).json()
    assert_same_shape(fixture("post_vendor_getUserDetails.response.json"), body)
    return {"Authorization": f"Bearer {body['userSession']}"}


async def _call(env: AliceEnv, method: str, path: str, auth: dict[str, str], body: Any = None) -> Any:
    response = await env.http.request(method, env.base_url + path, json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def test_venue_reads_match_the_fixtures(env: AliceEnv) -> None:
    auth = await _session(env)
    assert_same_shape(fixture("get_profile.response.json"), await _call(env, "GET", "profile/", auth))
    assert_same_shape(fixture("get_limits.response.json"), await _call(env, "GET", "limits/", auth))
    assert_same_shape(fixture("get_holdings.response.json"), await _call(env, "GET", "holdings/CNC", auth))
    assert_same_shape(fixture("get_positions.response.json"), await _call(env, "GET", "positions", auth))


async def test_venue_order_answers_match_the_fixtures(env: AliceEnv) -> None:
    auth = await _session(env)
    placed = await _call(env, "POST", "orders/placeorder", auth, fixture("post_orders_placeorder.request.json"))
    assert_same_shape(fixture("post_orders_placeorder.response.json"), placed)
    order_id = placed["result"][0]["brokerOrderId"]
    book = await _call(env, "GET", "orders/book", auth)
    assert_same_shape(fixture("get_orders_book.response.json"), book)
    history = await _call(env, "POST", "orders/history", auth, {"brokerOrderId": order_id})
    assert_same_shape(fixture("post_orders_history.response.json"), history)
    modify = {**fixture("post_orders_modify.request.json"), "brokerOrderId": order_id}
    assert_same_shape(fixture("post_orders_modify.response.json"), await _call(env, "POST", "orders/modify", auth, modify))
    cancelled = await _call(env, "POST", "orders/cancel", auth, {"brokerOrderId": order_id})
    assert_same_shape(fixture("post_orders_cancel.response.json"), cancelled)
    market = {**fixture("post_orders_placeorder.request.json")[0], "instrumentId": "14366", "quantity": 1,
              "orderType": "MARKET", "price": "", "orderTag": ""}
    await _call(env, "POST", "orders/placeorder", auth, [market])

    async def traded() -> Any:
        body = await _call(env, "GET", "orders/trades", auth)
        return body if body.get("status") == "Ok" else None

    assert_same_shape(fixture("get_orders_trades.response.json"), await env.until(traded))
    square_off = fixture("post_orders_positions_sqroff.request.json")[0]
    item = {**square_off, "instrumentId": "14366", "symbol": "IDEA-EQ", "quantity": "1", "product": "LONGTERM"}
    assert_same_shape(fixture("post_orders_positions_sqroff.response.json"),
                      await _call(env, "POST", "orders/positions/sqroff", auth, [item]))
