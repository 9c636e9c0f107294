"""ETNA's documented payloads (fixtures/, copied from the wire reference) parse into the domain."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.brokers.etna.errors import map_error
from gateway.brokers.etna.parsing import (
    parse_account,
    parse_order,
    parse_page,
    parse_position,
    parse_time,
)
from gateway.brokers.http import HttpResponse
from gateway.domain import (
    AssetClass,
    AuthenticationError,
    BadResponse,
    BrokerError,
    BrokerNotAvailable,
    Instrument,
    InvalidOrder,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

FIXTURES = Path(__file__).parent / "fixtures"
AAPL = Instrument(symbol="AAPL", currency="USD", broker_instrument_id="4")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(), parse_float=Decimal)


def test_parse_time_handles_0_to_7_digits_and_unset() -> None:
    assert parse_time("2019-02-25T13:33:40.9022856Z") == datetime(2019, 2, 25, 13, 33, 40, 902285, tzinfo=UTC)
    assert parse_time("2019-01-22T13:00:26.575811Z") == datetime(2019, 1, 22, 13, 0, 26, 575811, tzinfo=UTC)
    assert parse_time("2019-02-25T21:00:00Z") == datetime(2019, 2, 25, 21, tzinfo=UTC)
    assert parse_time("0001-01-01T00:00:00Z") is None
    with pytest.raises(BadResponse):
        parse_time("yesterday")


def test_filled_order_fixture() -> None:
    order = parse_order(fixture("get_order.response.json"), "c", "6303", AAPL)
    assert (order.status, order.broker_status, order.side, order.type) == (
        OrderStatus.FILLED, "Filled", OrderSide.BUY, OrderType.MARKET)
    assert order.filled_quantity == order.quantity == Decimal(150) and order.remaining_quantity == 0
    assert order.average_fill_price and order.average_fill_price.amount == Decimal("156.57")
    assert order.limit_price is None and order.client_order_id == "1045239786"
    assert order.created_at == datetime(2019, 1, 21, 15, 7, 45, 815888, tzinfo=UTC)


def test_orders_page_fixture_done_for_day_is_expired() -> None:
    items, more = parse_page(fixture("get_orders.response.json"), 2)
    assert more and len(items) == 2
    done = parse_order(items[1], "c", "6303", AAPL)
    assert done.status is OrderStatus.EXPIRED and done.notes == "Expired by OMS"


def test_placed_limit_order_fixture_is_pending_submit() -> None:
    order = parse_order(fixture("post_orders.response.json"), "c", "6303", AAPL)
    assert order.status is OrderStatus.PENDING_SUBMIT and order.time_in_force is TimeInForce.DAY
    assert order.limit_price and order.limit_price.amount == Decimal(170)


def test_positions_bare_array_and_paged_parse_alike() -> None:
    now = datetime.now(UTC)
    bare, more = parse_page(fixture("get_positions.response.json"), 10)
    paged, more_paged = parse_page(fixture("get_positions.paged.response.json"), 10)
    assert not more and not more_paged and bare == paged
    position = parse_position(bare[0], "c", "6303", now)
    assert position.quantity == Decimal(150) and position.instrument.asset_class is AssetClass.STOCK
    assert position.average_price and position.average_price.amount == Decimal("156.57")
    assert position.key.instrument_id == "4"


def test_accounts_fixture() -> None:
    account = parse_account(fixture("get_user_accounts.response.json")[0], "c")
    assert account.account_number == "6303" and account.display_name == "6303 (Jane Doe)"


def test_unknown_enum_value_is_bad_response() -> None:
    raw = {**fixture("get_order.response.json"), "Type": "Pegged"}
    with pytest.raises(BadResponse):
        parse_order(raw, "c", "6303", AAPL)


@pytest.mark.parametrize("status,error", [(403, AuthenticationError), (401, AuthenticationError),
                                          (500, BrokerNotAvailable), (422, InvalidOrder), (400, BrokerError)])
def test_documented_error_bodies_map_to_the_error_tree(status: int, error: type) -> None:
    for case in fixture("errors.json"):
        if case["http_status"] == status:
            mapped = map_error(HttpResponse(status, {}, case["body"], "http://x/api/token"))
            assert isinstance(mapped, error) and mapped.broker_message
