"""Request validation of the Alice Blue venue: the EC codes of ``orders/placeorder`` (and the parts
of ``orders/modify`` and ``orders/positions/sqroff`` that share them).

A failed check is an EC code (:class:`Refusal`) that the route answers either as the whole
envelope or, for one item of a placeorder basket, as that item's ``{"status": "Not_Ok",
"brokerOrderId": "", "message": "EC…"}``. Checks that only the exchange or the RMS can make (tick
size, margin, holdings) do not refuse the request: the order is booked ``REJECTED`` with a
``rejectionReason`` instead (see ``orders.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .state import AliceState, Listing

__all__ = ["ORDER_TYPES", "PlaceItem", "Refusal", "parse_place_item", "parse_price", "parse_quantity"]

ORDER_TYPES = {"LIMIT", "MARKET", "SL", "SLM"}
PRODUCTS = {"LONGTERM", "INTRADAY", "MTF"}
EXCHANGES = {"NSE", "BSE", "MCX", "NFO", "BFO", "CDS", "BCD"}


class Refusal(Exception):
    """A request refused with an EC code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(slots=True)
class PlaceItem:
    listing: Listing
    side: str
    quantity: int
    product: str
    order_type: str
    validity: str
    complexity: str
    price: Decimal | None
    price_text: str
    trigger: Decimal | None
    trigger_text: str
    tag: str
    algo_id: str
    disclosed: int


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse_quantity(value: Any, empty: str = "EC903") -> int:
    """A positive integer quantity (a JSON integer or a digit string); EC903 / EC904 / EC948."""
    if value is None or value == "":
        raise Refusal(empty)
    if isinstance(value, bool):
        raise Refusal("EC904")
    try:
        qty = Decimal(str(value))
    except InvalidOperation:
        raise Refusal("EC904") from None
    if qty <= 0 or qty != qty.to_integral_value():
        raise Refusal("EC904")
    if qty > 50_000_000:
        raise Refusal("EC948")
    return int(qty)


def parse_price(value: Any, invalid: str, non_positive: str) -> tuple[Decimal | None, str]:
    """A price sent as a string (numbers tolerated) → ``(Decimal, text as sent)``; ``""`` → None."""
    text = _text(value)
    if text == "":
        return None, ""
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise Refusal(invalid) from None
    if not price.is_finite():
        raise Refusal(invalid)
    if price <= 0:
        raise Refusal(non_positive)
    return price, text


def parse_place_item(state: AliceState, item: Any) -> PlaceItem:
    """Check one placeorder item in the documented order of its EC codes."""
    if not isinstance(item, dict):
        raise Refusal("EC914")
    exchange = _text(item.get("exchange")).upper()
    if not exchange:
        raise Refusal("EC900")
    if exchange not in EXCHANGES:
        raise Refusal("EC901")
    instrument_id = _text(item.get("instrumentId"))
    if not instrument_id:
        raise Refusal("EC941")
    if not instrument_id.isdigit():
        raise Refusal("EC946")
    listing = state.listing(exchange, instrument_id)
    if listing is None:
        raise Refusal("EC947")
    side = _text(item.get("transactionType")).upper()
    if not side:
        raise Refusal("EC907")
    if side not in ("BUY", "SELL"):
        raise Refusal("EC929")
    quantity = parse_quantity(item.get("quantity"))
    if quantity % listing.lot_size:
        raise Refusal("EC954")
    complexity = _text(item.get("orderComplexity")).upper()
    if not complexity:
        raise Refusal("EC942")
    if complexity not in ("REGULAR", "AMO"):
        raise Refusal("EC091")
    product = _text(item.get("product")).upper()
    if not product:
        raise Refusal("EC906")
    if product not in PRODUCTS:
        raise Refusal("EC092")
    order_type = _text(item.get("orderType")).upper()
    if not order_type:
        raise Refusal("EC934")
    if order_type not in ORDER_TYPES:
        raise Refusal("EC930")
    validity = _text(item.get("validity")).upper()
    if not validity:
        raise Refusal("EC944")
    if validity not in ("DAY", "IOC"):
        raise Refusal("EC932")
    if complexity == "AMO" and validity == "IOC":
        raise Refusal("EC996")
    price, price_text = parse_price(item.get("price"), "EC957", "EC958")
    trigger, trigger_text = parse_price(item.get("slTriggerPrice"), "EC959", "EC960")
    if order_type in ("LIMIT", "SL") and price is None:
        raise Refusal("EC950")
    if order_type in ("SL", "SLM") and trigger is None:
        raise Refusal("EC951")
    if order_type == "SL" and price is not None and trigger is not None:
        if side == "BUY" and trigger >= price:
            raise Refusal("EC973")
        if side == "SELL" and trigger <= price:
            raise Refusal("EC974")
    tag = _text(item.get("orderTag"))
    if len(tag) > 50:
        raise Refusal("EC971")
    algo_id = _text(item.get("algoId"))
    if len(algo_id) > 12:
        raise Refusal("EC972")
    disclosed_text = _text(item.get("disclosedQuantity"))
    disclosed = int(disclosed_text) if disclosed_text.isdigit() else 0
    return PlaceItem(listing, side.lower(), quantity, product, order_type, validity, complexity,
                     price if order_type in ("LIMIT", "SL") else None, price_text,
                     trigger if order_type in ("SL", "SLM") else None, trigger_text, tag, algo_id, disclosed)
