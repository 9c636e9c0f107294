"""ETNA order writes through the gateway (GraphQL over HTTP): place, modify, cancel and square off
change the venue's state as expected; cancelling a filled order (ETNA 409) is an OrderRejected with
ETNA's own message and code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from etna_gateway import EtnaGateway, etna_gateway

from tests.harness import GraphQLClient, SandboxControl, eventually

ORDER_ID_BASE = 80_300


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[EtnaGateway]:
    async with etna_gateway(("etna",)) as running:
        yield running


@pytest.fixture(scope="module")
async def accounts(env: EtnaGateway) -> dict[str, str]:
    """Account number → global id."""
    data = await env.etna.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1})
    return {a["accountNumber"]: a["id"] for a in data["connections"][0]["accounts"]}


async def _sim_order(control: SandboxControl, client_order_id: str) -> dict[str, Any]:
    (order,) = [o for o in (await control.state())["orders"] if o["client_order_id"] == client_order_id]
    return order


async def _held(control: SandboxControl, account: str, symbol: str) -> Decimal:
    positions = (await control.state())["accounts"][account]["positions"]
    return sum((Decimal(p["quantity"]) for p in positions if p["instrument"] == symbol), Decimal(0))


async def _order(client: GraphQLClient, order_id: str) -> dict[str, Any]:
    return (await client.data("Order", {"id": order_id}))["order"]


async def _place(client: GraphQLClient, account_id: str, **kw: Any) -> dict[str, Any]:
    order = {"accountId": account_id, "instrument": {"symbol": "AAPL"}, "side": "BUY", "type": "MARKET",
             "quantity": "1", **kw}
    return (await client.data("PlaceOrder", {"input": order}))["placeOrder"]


async def test_place_modify_cancel_change_the_venue(env: EtnaGateway, accounts: dict[str, str]) -> None:
    client, control = env.etna, env.control
    placed = await _place(client, accounts["6304"], type="LIMIT", limitPrice="100.00", quantity="10",
                          timeInForce="GTC")
    assert placed["__typename"] == "OrderPlaced", placed
    order = placed["order"]
    assert order["instrument"]["symbol"] == "AAPL" and order["brokerStatus"] == "PendingNew"
    assert order["limitPrice"] == {"amount": "100.00", "currency": "USD"} and order["clientOrderId"]
    sim = await _sim_order(control, order["clientOrderId"])
    assert str(ORDER_ID_BASE + int(sim["id"])) == order["brokerOrderId"] and sim["account"] == "6304"
    await eventually(lambda: _is(client, order["id"], "SUBMITTED"))

    modified = (await client.data("ModifyOrder", {"input": {"orderId": order["id"], "quantity": "15",
                                                            "limitPrice": "101.5"}}))["modifyOrder"]
    assert modified["__typename"] == "OrderModified", modified
    assert modified["order"]["quantity"] == "15" and modified["order"]["limitPrice"]["amount"] == "101.50"
    assert (await _sim_order(control, order["clientOrderId"]))["quantity"] == "15"
    after = await eventually(lambda: _is(client, order["id"], "SUBMITTED"))
    assert after["brokerStatus"] == "New" and after["limitPrice"]["amount"] == "101.50"

    cancel = (await client.data("CancelOrder", {"input": {"orderId": order["id"]}}))["cancelOrder"]
    assert cancel["__typename"] == "OrderCancelRequested", cancel
    assert cancel["order"]["status"] in ("PENDING_CANCEL", "CANCELED")
    await eventually(lambda: _sim_status(control, order["clientOrderId"], "canceled"))
    done = await eventually(lambda: _is(client, order["id"], "CANCELED"))
    assert done["brokerStatus"] == "Canceled" and done["remainingQuantity"] == "0"
    listed = await client.data("Orders", {"filter": {"status": ["CANCELED"], "symbol": "AAPL"}})
    assert order["id"] in {e["node"]["id"] for e in listed["orders"]["edges"]}


async def _is(client: GraphQLClient, order_id: str, status: str) -> dict[str, Any] | None:
    order = await _order(client, order_id)
    return order if order["status"] == status else None


async def _sim_status(control: SandboxControl, client_order_id: str, status: str) -> bool:
    return (await _sim_order(control, client_order_id))["status"] == status


async def test_cancel_of_a_filled_order_is_rejected_with_etnas_message(env: EtnaGateway,
                                                                       accounts: dict[str, str]) -> None:
    client, control = env.etna, env.control
    before = await _held(control, "6303", "MSFT")
    placed = await _place(client, accounts["6303"], instrument={"symbol": "MSFT"}, quantity="2")
    assert placed["__typename"] == "OrderPlaced", placed
    order = placed["order"]
    filled = await eventually(lambda: _is(client, order["id"], "FILLED"))
    assert filled["filledQuantity"] == "2" and filled["averageFillPrice"]["currency"] == "USD"
    assert await _held(control, "6303", "MSFT") == before + 2

    cancel = (await client.data("CancelOrder", {"input": {"orderId": order["id"]}}))["cancelOrder"]
    assert cancel["__typename"] == "OrderRejected", cancel
    assert cancel["code"] == "REJECTED" and cancel["brokerCode"] == "Conflict"
    assert cancel["brokerMessage"] == f"Order {order['brokerOrderId']} cannot be cancelled in status Filled"
    assert await _sim_status(control, order["clientOrderId"], "filled")  # nothing changed at the venue


async def _position(client: GraphQLClient, account: str, symbol: str) -> dict[str, Any] | None:
    nodes = (await client.data("Positions", {"filter": {"symbol": symbol}}))["positions"]["nodes"]
    return next((p for p in nodes if p["account"]["accountNumber"] == account), None)


async def test_square_off_long_and_short_positions(env: EtnaGateway) -> None:
    client, control = env.etna, env.control
    ibm = await _position(client, "6303", "IBM")
    assert ibm is not None and Decimal(ibm["quantity"]) == 30
    result = (await client.data("SquareOffPosition", {"input": {"positionId": ibm["id"], "quantity": "10"}}))
    placed = result["squareOffPosition"]
    assert placed["__typename"] == "OrderPlaced", placed
    assert placed["order"]["side"] == "SELL" and placed["order"]["quantity"] == "10"
    await eventually(lambda: _held_is(control, "6303", "IBM", Decimal(20)))

    meta = await _position(client, "6304", "META")
    assert meta is not None and Decimal(meta["quantity"]) == -20
    placed = (await client.data("SquareOffPosition", {"input": {"positionId": meta["id"], "quantity": "5"}}))
    order = placed["squareOffPosition"]["order"]
    assert order["side"] == "BUY" and order["instrument"]["symbol"] == "META"
    await eventually(lambda: _held_is(control, "6304", "META", Decimal(-15)))

    rest = (await client.data("SquareOffPosition", {"input": {"positionId": ibm["id"]}}))["squareOffPosition"]
    assert rest["__typename"] == "OrderPlaced" and rest["order"]["quantity"] == "20"
    await eventually(lambda: _held_is(control, "6303", "IBM", Decimal(0)))
    assert await eventually(lambda: _gone(client, "6303", "IBM"))


async def _held_is(control: SandboxControl, account: str, symbol: str, quantity: Decimal) -> bool:
    return await _held(control, account, symbol) == quantity


async def _gone(client: GraphQLClient, account: str, symbol: str) -> bool:
    return await _position(client, account, symbol) is None
