"""The Alice Blue adapter against the Alice Blue venue over HTTP on loopback."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from gateway.brokers import build_adapter
from gateway.brokers.aliceblue.adapter import AliceBlueAdapter
from gateway.domain import (
    AccountKey,
    AuthenticationError,
    ConnectionStatus,
    InstrumentRef,
    InvalidInput,
    InvalidOrder,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Product,
)
from gateway.sandbox.aliceblue import USERS

if TYPE_CHECKING:
    from conftest import AliceEnv

ACCOUNT = AccountKey("ab", "912444")
P = "/open-api/od/v1/"


def _find(positions: list[Position], symbol: str, product: Product) -> Position:
    matches = [p for p in positions if p.instrument.symbol == symbol and p.product is product]
    assert len(matches) == 1, f"{symbol} {product}: {matches}"
    return matches[0]


def _order(symbol: str, qty: str, cid: str, *, type: OrderType = OrderType.LIMIT, price: str | None = None,
           side: OrderSide = OrderSide.BUY, product: Product | None = None,
           exchange: str | None = "NSE") -> OrderRequest:
    return OrderRequest(InstrumentRef(symbol=symbol, exchange=exchange), side, type, Decimal(qty), cid,
                        account=ACCOUNT, limit_price=Decimal(price) if price else None, product=product)


async def test_fetch_accounts_returns_the_login_client_with_cash(adapter: AliceBlueAdapter) -> None:
    accounts = await adapter.fetch_accounts()
    assert [a.key for a in accounts] == [ACCOUNT]
    assert accounts[0].display_name == "ANANYA RAO"
    assert accounts[0].cash is not None and accounts[0].cash.amount == Decimal("500000")


async def test_fetch_positions_maps_holdings_and_positions_to_products_and_totals(
        adapter: AliceBlueAdapter, env: AliceEnv) -> None:
    positions = await adapter.fetch_positions(ACCOUNT)
    reliance = _find(positions, "RELIANCE", Product.LONGTERM)
    assert reliance.quantity == Decimal(55)  # dp 40 + t1 5 + collateral 10
    assert reliance.instrument.isin == "INE002A01018" and reliance.instrument.broker_instrument_id == "2885"
    assert reliance.extra["dpQuantity"] == Decimal(40) and reliance.extra["t1Quantity"] == Decimal(5)
    assert reliance.extra["collateralQuantity"] == Decimal(10)
    assert all(isinstance(v, Decimal) for v in reliance.extra.values())
    assert reliance.average_price is not None and reliance.average_price.amount == Decimal("1204.35")
    # an MTF buy of yesterday is in holdings/MTF (t1) and in positions (overnight): counted once
    infy_mtf = _find(positions, "INFY", Product.MTF)
    assert infy_mtf.quantity == Decimal(10) and infy_mtf.extra["overnightQuantity"] == Decimal(10)
    assert _find(positions, "INFY", Product.LONGTERM).quantity == Decimal(25)
    assert _find(positions, "TCS", Product.MTF).quantity == Decimal(8)
    assert _find(positions, "ETERNAL", Product.INTRADAY).quantity == Decimal(100)
    assert _find(positions, "ETERNAL", Product.LONGTERM).quantity == Decimal(150)
    sbin = _find(positions, "SBIN", Product.INTRADAY)
    assert sbin.quantity == Decimal(-50) and sbin.average_price is not None
    assert sbin.average_price.amount == Decimal("815.1")
    # every total matches the sandbox's own books
    for p in positions:
        assert await env.position_qty("912444", p.instrument.symbol or "", p.product.name) == str(p.quantity)
    assert len({p.key for p in positions}) == len(positions) == 9


async def test_square_off_intraday_position_uses_sqroff_and_flattens_it(
        adapter: AliceBlueAdapter, env: AliceEnv) -> None:
    eternal = _find(await adapter.fetch_positions(ACCOUNT), "ETERNAL", Product.INTRADAY)
    order = await adapter.square_off_position(eternal, Decimal(100), OrderType.MARKET, None, "sq-1")
    assert order.side is OrderSide.SELL and order.quantity == Decimal(100) and order.type is OrderType.MARKET
    await env.until(lambda: _qty_is(env, "ETERNAL", "INTRADAY", "0"))
    assert await env.position_qty("912444", "ETERNAL", "LONGTERM") == "150"
    after = await adapter.fetch_positions(ACCOUNT)
    flat = _find(after, "ETERNAL", Product.INTRADAY)
    assert flat.quantity == 0 and flat.extra["daySellQuantity"] == Decimal(100)
    assert _find(after, "ETERNAL", Product.LONGTERM).quantity == Decimal(150)
    stats = await env.stats()
    assert stats.get(f"POST {P}orders/positions/sqroff") == 1
    assert f"POST {P}orders/placeorder" not in stats


async def _qty_is(env: AliceEnv, key: str, product: str, qty: str) -> bool:
    return await env.position_qty("912444", key, product) == qty


async def test_square_off_part_of_a_longterm_holding_reduces_it(adapter: AliceBlueAdapter, env: AliceEnv) -> None:
    idea = _find(await adapter.fetch_positions(ACCOUNT), "IDEA", Product.LONGTERM)
    await adapter.square_off_position(idea, Decimal(6), OrderType.MARKET, None, "sq-2")
    await env.until(lambda: _qty_is(env, "IDEA", "LONGTERM", "30"))
    after = _find(await adapter.fetch_positions(ACCOUNT), "IDEA", Product.LONGTERM)
    assert after.quantity == Decimal(30) and after.extra["dpQuantity"] == Decimal(36)
    assert after.extra["sellableQty"] == Decimal(30)


async def test_limit_square_off_places_a_tagged_opposite_order(adapter: AliceBlueAdapter) -> None:
    sbin = _find(await adapter.fetch_positions(ACCOUNT), "SBIN", Product.INTRADAY)
    order = await adapter.square_off_position(sbin, Decimal(20), OrderType.LIMIT, Decimal("700.05"), "sq-3")
    assert order.side is OrderSide.BUY and order.client_order_id == "sq-3"
    assert order.raw["product"] == "INTRADAY"
    found = await adapter.fetch_order_by_client_id(ACCOUNT, "sq-3")
    assert found is not None and found.key == order.key


async def test_convert_intraday_to_longterm_moves_the_day_quantity(adapter: AliceBlueAdapter, env: AliceEnv) -> None:
    reliance = _find(await adapter.fetch_positions(ACCOUNT), "RELIANCE", Product.INTRADAY)
    converted = await adapter.convert_position(reliance, Product.LONGTERM, Decimal(4))
    assert converted.product is Product.LONGTERM and converted.quantity == Decimal(59)
    assert await env.position_qty("912444", "RELIANCE", "INTRADAY") == "6"
    assert await env.position_qty("912444", "RELIANCE", "LONGTERM") == "59"
    assert _find(await adapter.fetch_positions(ACCOUNT), "RELIANCE", Product.INTRADAY).quantity == Decimal(6)
    assert (await env.stats()).get(f"POST {P}conversion") == 1


async def test_convert_back_and_beyond_the_day_quantity_is_ec869(adapter: AliceBlueAdapter) -> None:
    reliance = _find(await adapter.fetch_positions(ACCOUNT), "RELIANCE", Product.INTRADAY)
    with pytest.raises(InvalidOrder) as caught:
        await adapter.convert_position(reliance, Product.LONGTERM, Decimal(11))
    assert caught.value.broker_code == "EC869"
    assert caught.value.broker_message == "Insufficient buy quantity available for conversion."
    with pytest.raises(InvalidInput):
        await adapter.convert_position(reliance, Product.CASH, Decimal(1))


async def test_create_order_with_zero_quantity_is_ec904_and_books_nothing(
        adapter: AliceBlueAdapter, env: AliceEnv) -> None:
    with pytest.raises(InvalidOrder) as caught:
        await adapter.create_order(_order("ACC", "0", "z-1", price="2100.10"))
    assert caught.value.broker_code == "EC904"
    assert caught.value.broker_message == "'quantity' should be a positive number."
    assert caught.value.connection == "ab"
    assert (await env.state())["orders"] == []


async def test_off_tick_price_reaches_the_broker_unrounded_and_comes_back_rejected(
        adapter: AliceBlueAdapter, env: AliceEnv) -> None:
    with pytest.raises(InvalidOrder) as caught:
        await adapter.create_order(_order("ACC", "30", "t-1", price="1120.15"))
    assert caught.value.broker_code == "REJECTED"
    assert caught.value.broker_message == "ORA:Price 1120.15 is not a multiple of tick size 0.10 "
    [booked] = (await env.state())["orders"]
    assert booked["status"] == "rejected" and booked["client_order_id"] == "t-1"
    rejected = await adapter.fetch_order_by_client_id(ACCOUNT, "t-1")
    assert rejected is not None and rejected.status is OrderStatus.REJECTED
    assert rejected.limit_price is not None and rejected.limit_price.amount == Decimal("1120.15")
    placed = await adapter.create_order(_order("ACC", "30", "t-2", price="1120.10"))
    assert placed.status is OrderStatus.SUBMITTED and placed.broker_status == "OPEN"


async def test_empty_books_are_empty_lists(env: AliceEnv) -> None:
    user = USERS["912445"]
    empty = build_adapter(env.config("ab2", {"user_id": user.user_id, "auth_code": user.auth_code,
                                             "api_secret": user.api_secret}))
    try:
        account = AccountKey("ab2", "912445")
        assert await empty.fetch_orders(account) == []
        assert await empty.fetch_positions(account) == []
    finally:
        await empty.close()
    stats = await env.stats()
    assert stats[f"GET {P}orders/book"] == 1 and stats[f"GET {P}positions"] == 1


async def test_market_order_fills_and_merges_into_the_holding(adapter: AliceBlueAdapter, env: AliceEnv) -> None:
    order = await adapter.create_order(OrderRequest(InstrumentRef(isin="INE669E01016"), OrderSide.BUY,
                                                    OrderType.MARKET, Decimal(3), "m-1", account=ACCOUNT))
    assert order.raw["product"] == "LONGTERM" and order.instrument.exchange == "NSE"

    async def filled() -> bool:
        found = await adapter.fetch_order_by_client_id(ACCOUNT, "m-1")
        return found is not None and found.status is OrderStatus.FILLED

    await env.until(filled)
    idea = _find(await adapter.fetch_positions(ACCOUNT), "IDEA", Product.LONGTERM)
    assert idea.quantity == Decimal(39) and idea.extra["totalQuantity"] == Decimal(36)


async def test_modify_then_cancel_a_working_order(adapter: AliceBlueAdapter, env: AliceEnv) -> None:
    order = await adapter.create_order(_order("INFY", "2", "mc-1", price="1700.00", product=Product.INTRADAY))
    modified = await adapter.modify_order(order.key, OrderUpdate(limit_price=Decimal("1701.10"), quantity=Decimal(3)))
    assert modified.limit_price is not None and modified.limit_price.amount == Decimal("1701.1")
    assert modified.quantity == Decimal(3)
    with pytest.raises(InvalidOrder) as caught:
        await adapter.modify_order(order.key, OrderUpdate(limit_price=Decimal("1701.13")))
    assert "tick size" in (caught.value.broker_message or "")
    await adapter.cancel_order(order.key)

    async def cancelled() -> bool:
        return (await adapter.fetch_order(order.key)).status is OrderStatus.CANCELED

    await env.until(cancelled)


async def test_expired_session_logs_in_again(adapter: AliceBlueAdapter, env: AliceEnv) -> None:
    await adapter.fetch_orders(ACCOUNT)
    await env.http.post(f"{env.origin}/__sandbox__/aliceblue/sessions/expire")
    assert await adapter.fetch_orders(ACCOUNT) == []
    assert adapter.client.logins == 2
    assert (await env.stats())[f"POST {P}vendor/getUserDetails"] == 2


async def test_wrong_credentials_are_unauthenticated(env: AliceEnv) -> None:
    bad = build_adapter(env.config(credentials={**env.credentials, "auth_code": "wrong"}))
    try:
        await bad.start()
        assert bad.status is ConnectionStatus.UNAUTHENTICATED
        with pytest.raises(AuthenticationError) as caught:
            await bad.fetch_accounts()
        assert caught.value.broker_message == "Invalid auth code"
    finally:
        await bad.close()


async def test_lost_placement_answer_is_reconciled_by_order_tag(adapter: AliceBlueAdapter, env: AliceEnv) -> None:
    await env.http.post(f"{env.origin}/__sandbox__/faults",
                        json={"after": True, "path": f"{P}orders/placeorder", "method": "POST", "times": 1})
    order = await adapter.create_order(_order("TCS", "1", "lost-1", price="4000.00"))
    assert order.client_order_id == "lost-1" and order.status is OrderStatus.SUBMITTED
    assert (await env.stats())[f"POST {P}orders/placeorder"] == 1  # never sent twice
    assert len((await env.state())["orders"]) == 1
