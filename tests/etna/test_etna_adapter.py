"""The ETNA adapter against the ETNA venue over HTTP: reads of two accounts, paging, and order
writes (place, replace, cancel, square off) checked against the sandbox's state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from etna_harness import Etna, eventually

from gateway.brokers.etna.adapter import EtnaAdapter
from gateway.domain import (
    AccountKey,
    InstrumentRef,
    InvalidOrder,
    OrderNotFound,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    TimeInForce,
)


@pytest.fixture(scope="module")
async def etna() -> AsyncIterator[Etna]:
    venue = await Etna().start()
    yield venue
    await venue.stop()


@pytest.fixture(scope="module")
async def adapter(etna: Etna) -> AsyncIterator[EtnaAdapter]:
    adapter = etna.adapter()
    await adapter.start()
    yield adapter
    await adapter.close()


def _key(adapter: EtnaAdapter, account: str) -> AccountKey:
    return AccountKey(adapter.connection, account)


def _limit_buy(account: AccountKey, cid: str, symbol: str = "IBM", qty: str = "3", price: str = "100") -> OrderRequest:
    return OrderRequest(instrument=InstrumentRef(symbol=symbol), side=OrderSide.BUY, type=OrderType.LIMIT,
                        quantity=Decimal(qty), limit_price=Decimal(price), client_order_id=cid, account=account,
                        time_in_force=TimeInForce.GTC)


async def test_fetch_accounts_two_accounts_of_the_user(adapter: EtnaAdapter) -> None:
    accounts = await adapter.fetch_accounts()
    assert [a.account_number for a in accounts] == ["6303", "6304"]
    assert all(a.display_name and "Jane Doe" in a.display_name for a in accounts)


async def test_fetch_positions_two_accounts_match_sandbox(etna: Etna, adapter: EtnaAdapter) -> None:
    state = await etna.state()
    for account in ("6303", "6304"):
        positions = await adapter.fetch_positions(_key(adapter, account))
        got = {p.instrument.symbol: p.quantity for p in positions}
        want = {p["instrument"]: Decimal(p["quantity"]) for p in state["accounts"][account]["positions"]
                if Decimal(p["quantity"]) != 0}
        assert got == want
        assert all(p.average_price and p.average_price.currency == "USD" for p in positions)
        assert all(p.key.instrument_id == p.instrument.broker_instrument_id for p in positions)
    short = [p for p in await adapter.fetch_positions(_key(adapter, "6304")) if p.quantity < 0]
    assert [p.instrument.symbol for p in short] == ["META"]


async def test_fetch_orders_two_accounts_have_symbols_and_client_ids(etna: Etna, adapter: EtnaAdapter) -> None:
    state = await etna.state()
    for account in ("6303", "6304"):
        orders = await adapter.fetch_orders(_key(adapter, account))
        sandbox = {o["client_order_id"]: o for o in state["orders"] if o["account"] == account}
        assert {o.client_order_id for o in orders} >= set(sandbox)
        for order in orders:
            assert order.instrument.symbol and order.instrument.exchange
            if order.client_order_id in sandbox:
                assert order.instrument.symbol == sandbox[order.client_order_id]["instrument"]
                assert order.quantity == Decimal(sandbox[order.client_order_id]["quantity"])
        statuses = {o.status for o in orders}
        assert {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.SUBMITTED} <= statuses


async def test_paging_small_pages_followed_to_the_end(etna: Etna, adapter: EtnaAdapter) -> None:
    small = etna.adapter(positions_page_size=2, orders_page_size=5)
    try:
        await etna.control("POST", "stats/reset")
        for account in ("6303", "6304"):
            key = _key(adapter, account)
            positions, orders = await adapter.fetch_positions(key), await adapter.fetch_orders(key)
            assert [p.key for p in await small.fetch_positions(key)] == [p.key for p in positions]
            assert [o.key for o in await small.fetch_orders(key)] == [o.key for o in orders]
        stats = await etna.stats()
        assert stats["GET /api/v1.0/accounts/6303/positions"] >= 3 + 1  # 5 positions / 2 per page, + default
        assert stats["GET /api/v1.0/accounts/6303/orders"] >= 5 + 1
    finally:
        await small.close()


async def test_positions_as_bare_array_are_read_the_same(etna: Etna, adapter: EtnaAdapter) -> None:
    key = _key(adapter, "6304")
    paged = await adapter.fetch_positions(key)
    small = etna.adapter(positions_page_size=2)
    await etna.control("POST", "etna/settings", {"positions_shape": "array"})
    try:
        assert [p.key for p in await small.fetch_positions(key)] == [p.key for p in paged]
        assert [p.quantity for p in await adapter.fetch_positions(key)] == [p.quantity for p in paged]
    finally:
        await etna.control("POST", "etna/settings", {"positions_shape": "paged"})
        await small.close()


async def test_create_modify_cancel_change_the_sandbox(etna: Etna, adapter: EtnaAdapter) -> None:
    key = _key(adapter, "6303")
    placed = await adapter.create_order(_limit_buy(key, "t-place-1"))
    assert placed.status is OrderStatus.PENDING_SUBMIT and placed.client_order_id == "t-place-1"
    assert placed.instrument.symbol == "IBM" and placed.limit_price and placed.limit_price.amount == Decimal(100)
    working = await eventually(lambda: etna.sandbox_order("t-place-1"), lambda o: o["status"] == "working")
    assert working["account"] == "6303" and working["quantity"] == "3"

    found = await adapter.fetch_order_by_client_id(key, "t-place-1")
    assert found is not None and found.key == placed.key

    modified = await adapter.modify_order(placed.key, OrderUpdate(quantity=Decimal(5), limit_price=Decimal("101.5")))
    assert modified.quantity == Decimal(5) and modified.limit_price and modified.limit_price.amount == Decimal("101.5")
    assert (await etna.sandbox_order("t-place-1"))["quantity"] == "5"
    assert (await adapter.fetch_order(placed.key)).status is OrderStatus.SUBMITTED

    canceling = await adapter.cancel_order(placed.key)
    assert canceling.status in (OrderStatus.PENDING_CANCEL, OrderStatus.CANCELED)
    done = await eventually(lambda: etna.sandbox_order("t-place-1"), lambda o: o["status"] == "canceled")
    assert done["status"] == "canceled"
    assert (await adapter.fetch_order(placed.key)).status is OrderStatus.CANCELED


async def test_market_order_fills_and_moves_the_position(etna: Etna, adapter: EtnaAdapter) -> None:
    key = _key(adapter, "6304")
    before = Decimal(await etna.position("6304", "AMZN"))
    order = await adapter.create_order(OrderRequest(
        instrument=InstrumentRef(symbol="AMZN"), side=OrderSide.BUY, type=OrderType.MARKET, quantity=Decimal(4),
        client_order_id="t-mkt-1", account=key))
    filled = await eventually(lambda: adapter.fetch_order(order.key), lambda o: o.status is OrderStatus.FILLED)
    assert filled.status is OrderStatus.FILLED and filled.filled_quantity == Decimal(4)
    assert filled.average_fill_price is not None and filled.remaining_quantity == 0
    assert Decimal(await etna.position("6304", "AMZN")) == before + 4


async def test_cancel_filled_order_raises_invalid_order_with_broker_message(adapter: EtnaAdapter) -> None:
    key = _key(adapter, "6303")
    filled = [o for o in await adapter.fetch_orders(key) if o.status is OrderStatus.FILLED][0]
    with pytest.raises(InvalidOrder) as info:
        await adapter.cancel_order(filled.key)
    assert info.value.broker_code == "Conflict"
    assert info.value.broker_message and "cannot be cancelled" in info.value.broker_message
    assert (await adapter.fetch_order(filled.key)).status is OrderStatus.FILLED


async def test_square_off_long_and_short_positions(etna: Etna, adapter: EtnaAdapter) -> None:
    long_ = next(p for p in await adapter.fetch_positions(_key(adapter, "6303")) if p.instrument.symbol == "MSFT")
    short = next(p for p in await adapter.fetch_positions(_key(adapter, "6304")) if p.instrument.symbol == "META")
    sell = await adapter.square_off_position(long_, Decimal(10), OrderType.MARKET, None, "t-sq-long")
    cover = await adapter.square_off_position(short, Decimal(5), OrderType.MARKET, None, "t-sq-short")
    assert sell.side is OrderSide.SELL and cover.side is OrderSide.BUY and cover.raw["Side"] == "BuyToCover"
    await eventually(lambda: etna.sandbox_order("t-sq-short"), lambda o: o["status"] == "filled")
    await eventually(lambda: etna.sandbox_order("t-sq-long"), lambda o: o["status"] == "filled")
    assert Decimal(await etna.position("6303", "MSFT")) == long_.quantity - 10
    assert Decimal(await etna.position("6304", "META")) == short.quantity + 5


async def test_validation_error_is_invalid_order_with_model_state(adapter: EtnaAdapter) -> None:
    request = OrderRequest(instrument=InstrumentRef(symbol="IBM"), side=OrderSide.BUY, type=OrderType.LIMIT,
                           quantity=Decimal(1), client_order_id="t-422", account=_key(adapter, "6303"))
    with pytest.raises(InvalidOrder) as info:
        await adapter.create_order(request)
    assert info.value.broker_code == "ValidationError"
    assert info.value.broker_message and "resource.Price" in info.value.broker_message


async def test_sell_more_than_held_is_accepted_then_rejected(adapter: EtnaAdapter) -> None:
    order = await adapter.create_order(OrderRequest(
        instrument=InstrumentRef(symbol="SPY"), side=OrderSide.SELL, type=OrderType.MARKET, quantity=Decimal(5000),
        client_order_id="t-rej-1", account=_key(adapter, "6303")))
    assert order.status is OrderStatus.PENDING_SUBMIT
    rejected = await eventually(lambda: adapter.fetch_order(order.key), lambda o: o.status is OrderStatus.REJECTED)
    assert rejected.status is OrderStatus.REJECTED and rejected.notes and "Insufficient position" in rejected.notes


async def test_lost_place_answer_is_reconciled_by_client_id(etna: Etna, adapter: EtnaAdapter) -> None:
    await etna.control("POST", "faults", {"status": 502, "after": True, "method": "POST",
                                          "path": "/api/v1.0/accounts/6303/orders", "times": 1})
    order = await adapter.create_order(_limit_buy(_key(adapter, "6303"), "t-lost-1", symbol="QQQ", price="300"))
    assert order.client_order_id == "t-lost-1" and order.instrument.symbol == "QQQ"
    assert len([o for o in (await etna.state())["orders"] if o["client_order_id"] == "t-lost-1"]) == 1


async def test_unknown_order_is_order_not_found(adapter: EtnaAdapter) -> None:
    from gateway.domain import OrderKey

    with pytest.raises(OrderNotFound):
        await adapter.fetch_order(OrderKey(adapter.connection, "6303", "1"))


async def test_accounts_carry_cash_and_currency_and_positions_their_exchange_and_isin(etna: Etna,
                                                                                     adapter: EtnaAdapter) -> None:
    state = await etna.state()
    accounts = {a.account_number: a for a in await adapter.fetch_accounts()}
    for number in ("6303", "6304"):
        assert accounts[number].base_currency == "USD"
        assert accounts[number].cash is not None and accounts[number].cash.currency == "USD"
        assert accounts[number].cash.amount == Decimal(str(state["accounts"][number]["cash"]))
    positions = {p.instrument.symbol: p for p in await adapter.fetch_positions(AccountKey("etna-test", "6303"))}
    aapl = positions["AAPL"].instrument
    assert (aapl.exchange, aapl.isin, aapl.name) == ("XNAS", "US0378331005", "APPLE INC")
    assert all(p.instrument.exchange and p.instrument.isin for p in positions.values())
