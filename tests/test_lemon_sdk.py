"""The official lemon Python SDK (PyPI ``lemon`` 1.3.1) talks to the paper venue: everything the
venue returns parses, and its errors map to the SDK's exception classes (lemon.md §11)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from lemon.errors import AuthenticationError, BusinessLogicError, InvalidQueryError
from lemon.trading.api import TradingAPI

from gateway.sandbox.lemon import API_KEY, LARGE_API_KEY
from tests.harness import SandboxControl, eventually


def sdk(base_url: str, key: str = API_KEY) -> TradingAPI:
    return TradingAPI(api_token=key, trading_api_url=base_url, timeout=5, retry_count=0, retry_backoff_factor=0.1)


async def test_sdk_reads_account_positions_and_pages(lemon_url: str) -> None:
    api = sdk(lemon_url, LARGE_API_KEY)
    account = await asyncio.to_thread(api.account.get)
    assert account.results.account_id.startswith("acc_") and isinstance(account.results.balance, int)
    first = await asyncio.to_thread(api.positions.get, limit=100)
    assert first.total == 200 and first.pages == 2 and first.next and first.next.startswith("http://")
    assert "/v1/positions/?" in first.next
    items = await asyncio.to_thread(lambda: list(first.auto_iter()))
    assert len(items) == 200 and len({p.isin for p in items}) == 200


async def test_sdk_places_activates_reads_and_cancels(lemon_url: str, lemon_control: SandboxControl) -> None:
    api = sdk(lemon_url)
    created = await asyncio.to_thread(api.orders.create, isin="DE0008232125", side="buy", quantity=5,
                                      expires_at="7d", limit_price=10000, notes="sdk", idempotency=None)
    order = created.results
    assert order.status == "inactive" and order.limit_price == 10000 and order.venue == "xmun"
    assert order.expires_at.hour == 22 and order.expires_at.minute == 59
    await asyncio.to_thread(api.orders.activate, order_id=order.id)
    listed = await asyncio.to_thread(api.orders.get, status=["activated", "open"],
                                     from_=datetime.now(UTC) - timedelta(hours=1), isin="DE0008232125")
    assert order.id in {o.id for o in listed.results}

    async def opened() -> bool:
        got = await asyncio.to_thread(api.orders.get_order, order_id=order.id)
        return got.results.status == "open" and got.results.type == "limit"

    await eventually(opened)
    await asyncio.to_thread(api.orders.cancel, order_id=order.id)

    async def canceled() -> bool:
        got = await asyncio.to_thread(api.orders.get_order, order_id=order.id)
        return got.results.status == "canceled" and got.results.cancelled_at is not None

    await eventually(canceled)


async def test_sdk_maps_venue_errors_to_its_exception_classes(lemon_url: str) -> None:
    with pytest.raises(AuthenticationError):
        await asyncio.to_thread(sdk(lemon_url, "wrong-key").orders.create, isin="DE0008232125", side="buy", quantity=1)
    with pytest.raises(InvalidQueryError):
        await asyncio.to_thread(sdk(lemon_url).orders.create, isin="DE0008232125", side="buy", quantity=0)
    with pytest.raises(BusinessLogicError) as info:
        await asyncio.to_thread(sdk(lemon_url).orders.create, isin="DE0008232125", side="buy", quantity=1,
                                expires_at="45d", limit_price=10000)
    assert info.value.error_code == "order_expiration_date_invalid"
    with pytest.raises(BusinessLogicError) as info:
        await asyncio.to_thread(sdk(lemon_url).orders.create, isin="US0378331005", side="buy", quantity=1000)
    assert info.value.error_code == "order_total_price_limit_exceeded"
    api = sdk(lemon_url)
    first = await asyncio.to_thread(api.orders.create, isin="DE0008232125", side="buy", quantity=1,
                                    idempotency="sdk-idem-1")
    with pytest.raises(BusinessLogicError) as info:
        await asyncio.to_thread(api.orders.create, isin="DE0008232125", side="buy", quantity=1,
                                idempotency="sdk-idem-1")
    assert info.value.error_code == "order_idempotency_violation"
    await asyncio.to_thread(api.orders.cancel, order_id=first.results.id)
