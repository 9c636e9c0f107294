"""Request bodies of ETNA's order writes: ``CreateOrderResource`` (place, square-off) and
``ModifyOrderResource`` (replace).

Numbers go out as JSON numbers (ETNA takes numbers, not strings): an integral Decimal as an int,
else as the float whose shortest repr is the Decimal's digits (prices and quantities have far
fewer than 15 significant digits). Times are UTC with a ``Z`` and whole seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ...domain.enums import OrderType, TimeInForce
from ...domain.models import Position
from ...domain.requests import OrderRequest, OrderUpdate
from .parsing import SIDE_TO_WIRE, TIF_TO_WIRE, TYPE_TO_WIRE

__all__ = ["place_body", "replace_body", "square_off_body", "wire_number", "wire_time"]


def wire_number(value: Decimal) -> int | Decimal:
    """A Decimal as a JSON number for a request body (the HTTP client writes Decimals as exact
    number literals, never through a float)."""
    return int(value) if value == value.to_integral_value() else value


def wire_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def place_body(request: OrderRequest, symbol: str) -> dict[str, Any]:
    """``POST v1.0/accounts/{id}/orders`` for ``request`` (``ClientId`` = its client order id;
    the request field is spelt ``TimeInforce``)."""
    body: dict[str, Any] = {
        "Symbol": symbol, "ClientId": request.client_order_id, "Type": TYPE_TO_WIRE[request.type],
        "Side": SIDE_TO_WIRE[request.side], "TimeInforce": TIF_TO_WIRE[request.time_in_force],
        "Quantity": wire_number(request.quantity),
    }
    if request.limit_price is not None:
        body["Price"] = wire_number(request.limit_price)
    if request.stop_price is not None:
        body["StopPrice"] = wire_number(request.stop_price)
    if request.expires_at is not None:
        body["ExpireDate"] = wire_time(request.expires_at)
    return body


def replace_body(current: dict[str, Any], update: OrderUpdate) -> dict[str, Any]:
    """``PUT v1.0/accounts/{id}/orders/{orderId}``: the changed fields, and the current values of
    the others (``Price`` / ``StopPrice`` only where the order has one; ``ClientId`` kept)."""
    body: dict[str, Any] = {"Id": current["Id"], "Quantity": current.get("Quantity")}
    if update.quantity is not None:
        body["Quantity"] = wire_number(update.quantity)
    if update.limit_price is not None or current.get("Price"):
        body["Price"] = wire_number(update.limit_price) if update.limit_price is not None else current["Price"]
    if update.stop_price is not None or current.get("StopPrice"):
        body["StopPrice"] = wire_number(update.stop_price) if update.stop_price is not None else current["StopPrice"]
    if update.expires_at is not None:
        body["ExpireDate"] = wire_time(update.expires_at)
    if current.get("ClientId"):
        body["ClientId"] = current["ClientId"]
    return body


def square_off_body(position: Position, symbol: str, quantity: Decimal, order_type: OrderType,
                    limit_price: Decimal | None, client_order_id: str) -> dict[str, Any]:
    """The closing day order: ``Sell`` for a long, ``BuyToCover`` for a short."""
    body: dict[str, Any] = {"Symbol": symbol, "ClientId": client_order_id, "Type": TYPE_TO_WIRE[order_type],
                            "Side": "Sell" if position.quantity > 0 else "BuyToCover",
                            "TimeInforce": TIF_TO_WIRE[TimeInForce.DAY], "Quantity": wire_number(quantity)}
    if order_type is OrderType.LIMIT and limit_price is not None:
        body["Price"] = wire_number(limit_price)
    return body
