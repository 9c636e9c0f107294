"""Domain requests → Alice Blue request bodies (the "build" step of each adapter verb).

Prices go out as strings exactly as given (``format(Decimal, "f")``): never rounded, so a price
off the tick size reaches the broker unchanged and its rejection (``ORA:Price … is not a multiple
of tick size …``) comes back as ``InvalidOrder``. Quantities are integers (strings in square-off
and conversion); a fractional quantity is refused here as ``InvalidInput`` since the wire cannot
carry it. Zero and negative quantities are sent as they are: the broker answers EC904 (through
GraphQL the gateway's own validation refuses them first, as ``InvalidInput`` on ``quantity``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ...domain.enums import OrderSide, OrderType, Product, TimeInForce
from ...domain.errors import InvalidInput
from ...domain.models import Order, Position
from ...domain.requests import OrderUpdate
from .parsing import ORDER_TYPE_WIRE, POSITION_PRODUCT_WIRE, PRODUCT_WIRE, SIDE_WIRE, VALIDITY_WIRE

__all__ = ["conversion_body", "modify_body", "place_item", "price_text", "sqroff_item", "wire_quantity"]


def price_text(value: Decimal | None) -> str:
    """``Decimal("1120.10")`` → ``"1120.10"``; ``None`` → ``""``. No rounding, ever."""
    return "" if value is None else format(value, "f")


def wire_quantity(value: Decimal, field: str = "quantity") -> int:
    if value != value.to_integral_value():
        raise InvalidInput(f"Alice Blue quantities are whole shares, not {value}", field=field)
    return int(value)


def wire_validity(tif: TimeInForce) -> str:
    if tif not in VALIDITY_WIRE:
        raise InvalidInput(f"Alice Blue orders are DAY or IOC, not {tif.name}", field="timeInForce")
    return VALIDITY_WIRE[tif]


def wire_product(product: Product | None) -> str:
    product = product or Product.LONGTERM
    if product not in PRODUCT_WIRE:
        raise InvalidInput(f"Alice Blue products are INTRADAY, LONGTERM and MTF, not {product.name}", field="product")
    return PRODUCT_WIRE[product]


def place_item(*, exchange: str, instrument_id: str, side: OrderSide, order_type: OrderType, quantity: Decimal,
               product: Product | None, tif: TimeInForce, limit_price: Decimal | None, stop_price: Decimal | None,
               client_order_id: str, device_id: str) -> dict[str, Any]:
    """One item of the ``orders/placeorder`` array (fixture ``post_orders_placeorder.request``)."""
    return {
        "exchange": exchange,
        "instrumentId": instrument_id,
        "transactionType": SIDE_WIRE[side],
        "quantity": wire_quantity(quantity),
        "product": wire_product(product),
        "orderComplexity": "REGULAR",
        "orderType": ORDER_TYPE_WIRE[order_type],
        "validity": wire_validity(tif),
        "price": price_text(limit_price) if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else "",
        "slLegPrice": "",
        "targetLegPrice": "",
        "slTriggerPrice": price_text(stop_price) if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else "",
        "disclosedQuantity": "",
        "marketProtectionPercent": "",
        "deviceId": device_id,
        "trailingSlAmount": "",
        "apiOrderSource": "",
        "algoId": "",
        "orderTag": client_order_id,
    }


def modify_body(current: Order, update: OrderUpdate, device_id: str) -> dict[str, Any]:
    """``orders/modify``: the order's current values with ``update`` applied (``trailingSLAmount`` /
    ``marketProtection`` are spelled differently from placement)."""
    if update.expires_at is not None:
        raise InvalidInput("Alice Blue orders have no expiry time", field="expiresAt")
    limit = update.limit_price if update.limit_price is not None else \
        (current.limit_price.amount if current.limit_price else None)
    stop = update.stop_price if update.stop_price is not None else \
        (current.stop_price.amount if current.stop_price else None)
    quantity = update.quantity if update.quantity is not None else current.quantity
    return {
        "brokerOrderId": current.key.broker_order_id,
        "quantity": wire_quantity(quantity),
        "orderType": ORDER_TYPE_WIRE[current.type],
        "slTriggerPrice": price_text(stop) if current.type in (OrderType.STOP, OrderType.STOP_LIMIT) else "",
        "price": price_text(limit) if current.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else "",
        "slLegPrice": "",
        "trailingSLAmount": "",
        "targetLegPrice": "",
        "validity": wire_validity(update.time_in_force or current.time_in_force),
        "disclosedQuantity": "0",
        "marketProtection": "",
        "deviceId": device_id,
    }


def closing_side(position: Position) -> OrderSide:
    if position.quantity == 0:
        raise InvalidInput("the position is flat: nothing to square off", field="positionId")
    return OrderSide.SELL if position.quantity > 0 else OrderSide.BUY


def sqroff_item(position: Position, listing: tuple[str, str, str], quantity: Decimal,
                device_id: str) -> dict[str, Any]:
    """One item of ``orders/positions/sqroff``: old-style keys, quantities as strings, ``MKT``."""
    exchange, instrument_id, symbol = listing
    return {
        "exchange": exchange,
        "symbol": symbol,
        "quantity": str(wire_quantity(quantity)),
        "price": "0",
        "product": wire_product(position.product),
        "transactionType": SIDE_WIRE[closing_side(position)],
        "orderType": "MKT",
        "triggerPrice": "",
        "ret": "DAY",
        "disclosedQuantity": "",
        "mktProtection": "",
        "target": "",
        "stopLoss": "",
        "trailingStopLoss": "",
        "orderComplexity": "REGULAR",
        "source": "API",
        "instrumentId": instrument_id,
        "deviceNumber": device_id,
    }


def conversion_body(position: Position, listing: tuple[str, str, str], to_product: Product,
                    quantity: Decimal) -> dict[str, Any]:
    """``conversion``: names the position by exchange + tradingSymbol, in the position book's
    product words (``MIS`` / ``CNC`` / ``MTF``); ``transactionType`` is the side of the day's net."""
    if position.product not in POSITION_PRODUCT_WIRE or to_product not in POSITION_PRODUCT_WIRE:
        raise InvalidInput("Alice Blue converts between INTRADAY, LONGTERM and MTF", field="toProduct")
    if position.product is to_product:
        raise InvalidInput(f"the position is already {to_product.name}", field="toProduct")
    exchange, _, symbol = listing
    day = position.raw.get("position") or {}
    net = Decimal(str(day.get("netQuantity", 0))) - Decimal(str(day.get("overnightQuantity", 0))) \
        if day else position.quantity
    return {
        "exchange": exchange,
        "validity": "DAY",
        "prevProduct": POSITION_PRODUCT_WIRE[position.product],
        "product": POSITION_PRODUCT_WIRE[to_product],
        "quantity": str(wire_quantity(quantity)),
        "tradingSymbol": symbol,
        "transactionType": "SELL" if net < 0 else "BUY",
        "orderSource": "API",
    }
