"""Order request bodies for IBKR (ibkr.md §4.1, §8) and the shapes of its answers (§4.3).

``price`` is the limit for LMT / STOP_LIMIT and the **stop** for STP; ``auxPrice`` the stop of a
STOP_LIMIT. Quantities and prices go out as JSON numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...domain.enums import OrderSide, OrderType, TimeInForce
from ...domain.errors import BadResponse, InvalidInput, InvalidOrder, NotSupported
from ...domain.models import Order
from ...domain.requests import OrderRequest, OrderUpdate

__all__ = ["Accepted", "Question", "build_modify", "build_order", "read_answer"]

ORDER_TYPE_WIRE = {OrderType.MARKET: "MKT", OrderType.LIMIT: "LMT", OrderType.STOP: "STP",
                   OrderType.STOP_LIMIT: "STOP_LIMIT"}
TIF_WIRE = {TimeInForce.DAY: "DAY", TimeInForce.GTC: "GTC", TimeInForce.OPG: "OPG", TimeInForce.IOC: "IOC"}
SIDE_WIRE = {OrderSide.BUY: "BUY", OrderSide.SELL: "SELL"}


def num(value: Decimal) -> int | Decimal:
    """A Decimal as the JSON number IBKR expects (integral → int; the HTTP client writes Decimals as
    exact number literals, never through a float)."""
    return int(value) if value == value.to_integral_value() else value


def _prices(kind: OrderType, limit: Decimal | None, stop: Decimal | None) -> dict[str, Any]:
    if kind is OrderType.MARKET:
        return {}
    if kind is OrderType.LIMIT:
        if limit is None:
            raise InvalidInput("a LIMIT order needs limitPrice", field="limitPrice")
        return {"price": num(limit)}
    if kind is OrderType.STOP:
        if stop is None:
            raise InvalidInput("a STOP order needs stopPrice", field="stopPrice")
        return {"price": num(stop)}
    if limit is None or stop is None:
        raise InvalidInput("a STOP_LIMIT order needs limitPrice and stopPrice", field="stopPrice")
    return {"price": num(limit), "auxPrice": num(stop)}


def _tif(tif: TimeInForce) -> str:
    if tif not in TIF_WIRE:
        raise NotSupported(f"IBKR Client Portal orders do not take time in force {tif.name}")
    return TIF_WIRE[tif]


def build_order(request: OrderRequest, conid: str, target: str) -> dict[str, Any]:
    """One item of ``{"orders": [...]}`` for POST iserver/account/{target}/orders."""
    body: dict[str, Any] = {"acctId": target, "conid": int(conid), "cOID": request.client_order_id,
                            "orderType": ORDER_TYPE_WIRE[request.type], "side": SIDE_WIRE[request.side],
                            "tif": _tif(request.time_in_force), "quantity": num(request.quantity)}
    body.update(_prices(request.type, request.limit_price, request.stop_price))
    return body


def build_modify(order: Order, update: OrderUpdate) -> dict[str, Any]:
    """The bare order object of POST iserver/account/{acct}/order/{id}: the original with changes."""
    limit = update.limit_price if update.limit_price is not None else \
        (order.limit_price.amount if order.limit_price else None)
    stop = update.stop_price if update.stop_price is not None else \
        (order.stop_price.amount if order.stop_price else None)
    body: dict[str, Any] = {
        "conid": int(order.instrument.broker_instrument_id or 0), "orderType": ORDER_TYPE_WIRE[order.type],
        "side": SIDE_WIRE[order.side], "tif": _tif(update.time_in_force or order.time_in_force),
        "quantity": num(update.quantity if update.quantity is not None else order.quantity),
    }
    body.update(_prices(order.type, limit, stop))
    return body


@dataclass(frozen=True, slots=True)
class Accepted:
    order_id: str
    status: str
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Question:
    reply_id: str
    messages: tuple[str, ...]
    message_ids: tuple[str, ...]
    raw: dict[str, Any]


def read_answer(body: Any) -> Accepted | Question:
    """Place / reply / modify answers: an accepted array or a question array (an ``{"error"}``
    object was already raised by the error mapper)."""
    if isinstance(body, dict) and body.get("prompt"):
        raise InvalidOrder(f"IBKR server prompt {body.get('messageId')} is not supported: {body.get('text')}",
                           broker_code=str(body.get("messageId")))
    if not isinstance(body, list) or not body or not isinstance(body[0], dict):
        raise BadResponse(f"unexpected IBKR order answer: {str(body)[:200]}")
    item = body[0]
    if "order_id" in item:
        return Accepted(str(item["order_id"]), str(item.get("order_status", "")), item)
    if "id" in item:
        messages = item.get("message") or []
        return Question(str(item["id"]), tuple(str(m) for m in messages),
                        tuple(str(m) for m in item.get("messageIds") or []), item)
    raise BadResponse(f"unexpected IBKR order answer: {str(body)[:200]}")

