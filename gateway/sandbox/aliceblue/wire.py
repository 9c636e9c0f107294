"""Alice Blue wire shapes: envelopes, numbers, order / trade / position / holding items.

Every success is ``{"status": "Ok", "message": "Success", "result": [...]}`` (``result`` always an
array); every failure ``{"status": "Not_Ok", "message": "EC…"}`` with HTTP 200. Prices are numbers
in responses (rendered from ``Decimal`` through ``float``, exact for two-decimal rupee prices);
times are IST wall-clock text ``"2025-05-26 11:42:10"``, ``""`` when unset.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ..engine import SimOrder, SimStatus
from .codes import PRODUCT_WORDS

if TYPE_CHECKING:
    from .state import AliceState

__all__ = ["IST", "failure", "num", "ok", "order_item", "read_json", "request_time", "status_word", "trade_items"]

IST = timezone(timedelta(hours=5, minutes=30), "IST")


def num(value: Decimal | int | None, places: int | None = None) -> int | float | None:
    """A JSON number for ``value``: an int when integral, else a float (``1120.1``)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    if value == value.to_integral_value():
        return int(value)
    return float(value)


async def read_json(request: Request) -> Any:
    """The request's JSON body, ``None`` when it is not JSON."""
    try:
        return await request.json()
    except ValueError:
        return None


def ok(result: list[Any], status: int = 200) -> Response:
    return Response(json.dumps({"status": "Ok", "message": "Success", "result": result}),
                    status_code=status, media_type="application/json")


def failure(code: str, status: int = 200) -> Response:
    """The failure envelope: a bare EC code (or a line of prose) in ``message``."""
    return Response(json.dumps({"status": "Not_Ok", "message": code}), status_code=status,
                    media_type="application/json")


def request_time(square_off: bool = False) -> str:
    now = datetime.now(IST)
    return f"{now:%H:%M:%S %d-%m-%Y}" if square_off else f"{now:%d-%b-%Y %H:%M:%S}"


def _ist(at: datetime | None) -> str:
    return "" if at is None else f"{at.astimezone(IST):%Y-%m-%d %H:%M:%S}"


def status_word(order: SimOrder) -> str:
    """The engine state as Alice Blue's ``orderStatus`` (upper case, as in the fixtures)."""
    if order.status is SimStatus.FILLED:
        return "COMPLETE"
    if order.status in (SimStatus.CANCELED, SimStatus.EXPIRED):
        return "CANCELLED"
    if order.status is SimStatus.REJECTED:
        return "REJECTED"
    if order.stop_price is not None and not order.triggered:
        return "TRIGGER PENDING"
    return "OPEN"


def order_item(state: AliceState, order: SimOrder) -> dict[str, Any]:
    """One item of ``orders/book`` and ``orders/history`` (fixture ``get_orders_book``)."""
    x = order.extra
    word = status_word(order)
    rejected = word == "REJECTED"
    open_ = word in ("OPEN", "TRIGGER PENDING")
    cancelled = order.remaining if word == "CANCELLED" else Decimal(0)
    stamp = "" if rejected else _ist(order.updated_at)
    return {
        "clientId": order.account_id,
        "placedBy": order.account_id,
        "brokerOrderId": order.id,
        "exchange": x["exchange"],
        "exchangeOrderId": "" if rejected else x["exchange_order_id"],
        "formattedInstrumentName": x["formatted_name"],
        "tradingSymbol": x["trading_symbol"],
        "instrumentId": x["instrument_id"],
        "transactionType": order.side.upper(),
        "quantity": int(order.quantity),
        "product": order.product,
        "orderComplexity": x["complexity"],
        "orderType": x["order_type"],
        "price": num(order.limit_price) if order.limit_price is not None else 0,
        "averageTradedPrice": num(order.average_price, 2) if order.filled_quantity else 0,
        "slTriggerPrice": num(order.stop_price) if order.stop_price is not None else 0,
        "validity": x["validity"],
        "disclosedQuantity": int(x.get("disclosed", 0)),
        "orderTime": "" if rejected else _ist(order.created_at),
        "exchangeUpdateTime": stamp,
        "rejectionReason": order.reject_reason or "",
        "mainLegOrderId": "",
        "cancelledQuantity": int(cancelled),
        "pendingQuantity": int(order.remaining) if open_ else 0,
        "filledQuantity": int(order.filled_quantity),
        "appKey": "",
        "algoId": x.get("algo_id", ""),
        "source": x.get("source", "API"),
        "orderTag": x.get("order_tag", ""),
        "trailingSlAmount": 0,
        "brokerUpdateTime": stamp,
        "marketProtectionPercent": "",
        "exchangeTimestamp": stamp,
        "orderStatus": word,
    }


def trade_items(order: SimOrder) -> list[dict[str, Any]]:
    """The ``orders/trades`` items of one order, one per fill; an empty tag is ``"--"`` here."""
    x = order.extra
    ids = x.get("trade_ids", [])
    out = []
    for i, fill in enumerate(order.fills):
        out.append({
            "clientId": order.account_id,
            "placedBy": order.account_id,
            "brokerOrderId": order.id,
            "exchangeOrderId": x["exchange_order_id"],
            "exchangeTradeId": ids[i] if i < len(ids) else fill.id,
            "formattedInstrumentName": x["formatted_name"],
            "tradingSymbol": x["trading_symbol"],
            "instrumentId": x["instrument_id"],
            "exchange": x["exchange"],
            "transactionType": order.side.upper(),
            "product": order.product,
            "orderComplexity": x["complexity"],
            "orderType": x["order_type"],
            "validity": x["validity"],
            "tradedPrice": num(fill.price),
            "filledQuantity": int(fill.quantity),
            "orderTime": _ist(order.created_at),
            "fillTimestamp": f"{fill.at.astimezone(IST):%Y-%m-%d %H:%M:%S}",
            "orderTag": x.get("order_tag") or "--",
            "algoId": x.get("algo_id", ""),
        })
    return out


def position_word(product: str) -> str:
    return PRODUCT_WORDS[product]
