"""Order life cycles through the gateway on lemon: place, fill, wait, cancel, square off, idempotency."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.harness import GraphQLClient, SandboxControl, eventually, running_gateway


async def account_id(gql: GraphQLClient) -> str:
    data = await gql.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1})
    return data["connections"][0]["accounts"][0]["id"]


async def position(gql: GraphQLClient, isin: str) -> dict[str, Any] | None:
    data = await gql.data("Positions", {"first": 100, "filter": {"isin": isin}})
    nodes = data["positions"]["nodes"]
    return nodes[0] if nodes else None


async def order_status(gql: GraphQLClient, order_id: str) -> dict[str, Any]:
    return (await gql.data("Order", {"id": order_id}))["order"]


def order_input(account: str, **kw: Any) -> dict[str, Any]:
    return {"accountId": account, "instrument": {"isin": "US0378331005"}, "side": "BUY", "type": "MARKET",
            "quantity": "1", **kw}


async def place(gql: GraphQLClient, **kw: Any) -> dict[str, Any]:
    return (await gql.data("PlaceOrder", {"input": order_input(await account_id(gql), **kw)}))["placeOrder"]


async def test_market_order_fills_and_position_grows(gql: GraphQLClient) -> None:
    before = Decimal((await position(gql, "US0378331005"))["quantity"])
    result = await place(gql, quantity="3")
    assert result["__typename"] == "OrderPlaced", result
    order = result["order"]
    assert order["clientOrderId"] and order["status"] in ("PENDING_SUBMIT", "SUBMITTED", "FILLED")
    filled = await eventually(lambda: _status_is(gql, order["id"], "FILLED"))
    assert Decimal(filled["filledQuantity"]) == 3 and filled["averageFillPrice"]["currency"] == "EUR"
    after = Decimal((await position(gql, "US0378331005"))["quantity"])
    assert after == before + 3


async def _status_is(gql: GraphQLClient, order_id: str, status: str) -> dict[str, Any] | None:
    order = await order_status(gql, order_id)
    return order if order["status"] == status else None


async def test_limit_order_waits_until_the_price_crosses(gql: GraphQLClient, lemon_control: SandboxControl) -> None:
    await lemon_control.price("IE00B4L5Y983", "101.73")
    result = await place(gql, instrument={"isin": "IE00B4L5Y983"}, type="LIMIT", limitPrice="95.50", quantity="2",
                         timeInForce="GTC")
    assert result["__typename"] == "OrderPlaced", result
    order_id = result["order"]["id"]
    await eventually(lambda: _status_is(gql, order_id, "SUBMITTED"))
    await asyncio.sleep(0.3)  # well past the venue's fill delay (0.05 s): away from the market it must not fill
    for _ in range(3):
        assert (await order_status(gql, order_id))["status"] == "SUBMITTED"
    await lemon_control.price("IE00B4L5Y983", "95.40")
    filled = await eventually(lambda: _status_is(gql, order_id, "FILLED"))
    assert Decimal(filled["averageFillPrice"]["amount"]) <= Decimal("95.50")
    await lemon_control.price("IE00B4L5Y983", "101.73")


async def test_cancel_order_reaches_canceled(gql: GraphQLClient) -> None:
    result = await place(gql, instrument={"isin": "DE0008232125"}, type="LIMIT", limitPrice="1.00", quantity="10")
    order_id = result["order"]["id"]
    cancel = (await gql.data("CancelOrder", {"input": {"orderId": order_id}}))["cancelOrder"]
    assert cancel["__typename"] == "OrderCancelRequested"
    assert cancel["order"]["status"] in ("PENDING_CANCEL", "CANCELED")
    done = await eventually(lambda: _status_is(gql, order_id, "CANCELED"))
    assert done["brokerStatus"] == "canceled" and done["remainingQuantity"] == "0"
    again = (await gql.data("CancelOrder", {"input": {"orderId": order_id}}))["cancelOrder"]
    assert again["__typename"] in ("OrderCancelRequested",)  # canceling a canceled order is a no-op at lemon


async def test_cancel_of_filled_order_is_rejected_with_broker_code(gql: GraphQLClient) -> None:
    result = await place(gql, quantity="1")
    await eventually(lambda: _status_is(gql, result["order"]["id"], "FILLED"))
    cancel = (await gql.data("CancelOrder", {"input": {"orderId": result["order"]["id"]}}))["cancelOrder"]
    assert cancel["__typename"] == "OrderRejected" and cancel["brokerCode"] == "order_not_terminated"


async def test_square_off_brings_the_position_to_zero(gql: GraphQLClient) -> None:
    bought = await place(gql, instrument={"isin": "US88160R1014"}, quantity="4")
    await eventually(lambda: _status_is(gql, bought["order"]["id"], "FILLED"))
    held = await position(gql, "US88160R1014")
    assert held is not None and Decimal(held["quantity"]) >= 4
    result = (await gql.data("SquareOffPosition", {"input": {"positionId": held["id"]}}))["squareOffPosition"]
    assert result["__typename"] == "OrderPlaced" and result["order"]["side"] == "SELL"
    assert Decimal(result["order"]["quantity"]) == Decimal(held["quantity"])
    await eventually(lambda: _status_is(gql, result["order"]["id"], "FILLED"))
    assert await position(gql, "US88160R1014") is None  # lemon lists no flat positions


async def test_same_idempotency_key_gives_one_order_and_the_same_result(
        gql: GraphQLClient, lemon_control: SandboxControl) -> None:
    key = f"idem-{uuid.uuid4()}"
    before = len((await lemon_control.state())["orders"])
    first = await place(gql, idempotencyKey=key, quantity="2")
    second = await place(gql, idempotencyKey=key, quantity="2")
    assert first["__typename"] == second["__typename"] == "OrderPlaced"
    assert first["order"]["id"] == second["order"]["id"]
    assert first["order"]["clientOrderId"] == second["order"]["clientOrderId"]
    assert len((await lemon_control.state())["orders"]) == before + 1
    conflict = await place(gql, idempotencyKey=key, quantity="3")
    assert conflict["__typename"] == "InvalidInput" and conflict["code"] == "IDEMPOTENCY_CONFLICT"
    assert len((await lemon_control.state())["orders"]) == before + 1


async def test_idempotency_survives_a_gateway_restart_through_the_broker(
        gateway: Any, gql: GraphQLClient, lemon_control: SandboxControl) -> None:
    """Another gateway process (empty idempotency store) sends the same client order id; lemon's
    idempotency catches it and the adapter answers with the existing order."""
    key = f"idem-{uuid.uuid4()}"
    first = await place(gql, idempotencyKey=key)
    count = len((await lemon_control.state())["orders"])
    async with running_gateway(gateway.config) as fresh:
        other = fresh.client(gql.headers["Authorization"].split()[1])
        again = await place(other, idempotencyKey=key)
        conflict = await place(other, idempotencyKey=key, quantity="5")
    assert again["__typename"] == "OrderPlaced" and again["order"]["id"] == first["order"]["id"]
    assert conflict["__typename"] == "InvalidInput" and conflict["code"] == "IDEMPOTENCY_CONFLICT"
    assert len((await lemon_control.state())["orders"]) == count


async def test_orders_query_filters_and_pages(gql: GraphQLClient) -> None:
    for _ in range(3):
        await place(gql, instrument={"isin": "IE00B4L5Y983"}, side="BUY", type="LIMIT", limitPrice="10", quantity="1")
    data = await gql.data("Orders", {"first": 2, "filter": {"isin": "IE00B4L5Y983", "status": ["SUBMITTED",
                                                                                                "PENDING_SUBMIT"]}})
    page = data["orders"]
    assert len(page["edges"]) == 2 and page["totalCount"] >= 3 and page["pageInfo"]["hasNextPage"]
    nxt = await gql.data("Orders", {"first": 2, "after": page["pageInfo"]["endCursor"],
                                    "filter": {"isin": "IE00B4L5Y983", "status": ["SUBMITTED", "PENDING_SUBMIT"]}})
    first_ids = {e["node"]["id"] for e in page["edges"]}
    assert not first_ids & {e["node"]["id"] for e in nxt["orders"]["edges"]}
    created = [e["node"]["createdAt"] for e in page["edges"]]
    assert created == sorted(created, reverse=True)
    recent = await gql.data("Orders", {"filter": {"createdAfter": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}})
    assert recent["orders"]["totalCount"] == 0
    for edge in [*page["edges"], *nxt["orders"]["edges"]]:
        await gql.data("CancelOrder", {"input": {"orderId": edge["node"]["id"]}})


async def test_modify_and_convert_are_not_supported_on_lemon(gql: GraphQLClient) -> None:
    result = await place(gql, instrument={"isin": "DE0008232125"}, type="LIMIT", limitPrice="1.00", quantity="1")
    modify = (await gql.data("ModifyOrder", {"input": {"orderId": result["order"]["id"], "limitPrice": "1.10"}}))
    assert modify["modifyOrder"]["__typename"] == "NotSupported"
    held = await position(gql, "DE0008232125")
    convert = await gql.data("ConvertPosition", {"input": {"positionId": held["id"], "toProduct": "INTRADAY"}})
    assert convert["convertPosition"]["__typename"] == "NotSupported"
    await gql.data("CancelOrder", {"input": {"orderId": result["order"]["id"]}})


async def test_sell_beyond_holdings_is_rejected_with_the_broker_code(gql: GraphQLClient,
                                                                     lemon_control: SandboxControl) -> None:
    result = await place(gql, instrument={"isin": "US19260Q1076"}, side="SELL", quantity="500")
    assert result["__typename"] == "OrderRejected" and result["code"] == "INSUFFICIENT_FUNDS"
    assert result["brokerCode"] == "insufficient_holdings" and result["brokerMessage"]
    rejected = [o for o in (await lemon_control.state())["orders"] if o["quantity"] == "500"]
    assert rejected and rejected[-1]["status"] == "rejected"
