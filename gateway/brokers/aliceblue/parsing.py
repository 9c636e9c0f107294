"""Alice Blue wire JSON → domain objects; the explicit enum maps of both directions.

Money is INR ``Decimal`` (responses carry JSON numbers, parsed as ``Decimal`` by the HTTP client);
times are IST wall-clock text (``"2025-05-26 11:42:10"``, ``""`` when unset) turned into UTC.
An unmapped enum word raises ``BadResponse``; words are compared case-insensitively.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from ...domain.enums import OrderSide, OrderStatus, OrderType, Product, TimeInForce
from ...domain.errors import BadResponse
from ...domain.keys import OrderKey
from ...domain.models import Instrument, Money, Order

__all__ = [
    "IST", "ORDER_STATUS", "ORDER_TYPE", "ORDER_TYPE_WIRE", "PRODUCT", "PRODUCT_WIRE", "POSITION_PRODUCT_WIRE",
    "SIDE", "SIDE_WIRE", "VALIDITY", "VALIDITY_WIRE", "dec", "enum", "money", "parse_order", "parse_time",
    "plain_symbol",
]

IST = timezone(timedelta(hours=5, minutes=30), "IST")
CURRENCY = "INR"

#: ``orderStatus`` (wire reference §7: OPEN, COMPLETE, REJECTED documented; CANCELLED, TRIGGER
#: PENDING probable). The others are the Codifi/NEST intermediate words of Alice Blue's older APIs.
ORDER_STATUS: dict[str, OrderStatus] = {
    "OPEN": OrderStatus.SUBMITTED,
    "TRIGGER PENDING": OrderStatus.SUBMITTED,
    "COMPLETE": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "OPEN PENDING": OrderStatus.PENDING_SUBMIT,
    "VALIDATION PENDING": OrderStatus.PENDING_SUBMIT,
    "PUT ORDER REQ RECEIVED": OrderStatus.PENDING_SUBMIT,
    "AFTER MARKET ORDER REQ RECEIVED": OrderStatus.PENDING_SUBMIT,
    "MODIFY PENDING": OrderStatus.SUBMITTED,
    "MODIFY VALIDATION PENDING": OrderStatus.SUBMITTED,
    "MODIFIED": OrderStatus.SUBMITTED,
    "NOT MODIFIED": OrderStatus.SUBMITTED,
    "NOT CANCELLED": OrderStatus.SUBMITTED,
    "CANCEL PENDING": OrderStatus.PENDING_CANCEL,
}
#: ``orderType``; the old-style words appear in square-off requests
ORDER_TYPE: dict[str, OrderType] = {
    "MARKET": OrderType.MARKET, "LIMIT": OrderType.LIMIT, "SL": OrderType.STOP_LIMIT, "SLM": OrderType.STOP,
    "MKT": OrderType.MARKET, "L": OrderType.LIMIT, "SL-M": OrderType.STOP,
}
ORDER_TYPE_WIRE: dict[OrderType, str] = {
    OrderType.MARKET: "MARKET", OrderType.LIMIT: "LIMIT", OrderType.STOP_LIMIT: "SL", OrderType.STOP: "SLM",
}
SIDE: dict[str, OrderSide] = {"BUY": OrderSide.BUY, "SELL": OrderSide.SELL}
SIDE_WIRE: dict[OrderSide, str] = {v: k for k, v in SIDE.items()}
#: ``product`` in orders (LONGTERM / INTRADAY / MTF), positions (CNC / MIS / NRML) and holdings
#: (DELIVERY). NRML is the F&O carry-forward product (MARGIN); CO / BO are intraday order kinds.
PRODUCT: dict[str, Product] = {
    "LONGTERM": Product.LONGTERM, "CNC": Product.LONGTERM, "DELIVERY": Product.LONGTERM,
    "INTRADAY": Product.INTRADAY, "MIS": Product.INTRADAY, "CO": Product.INTRADAY, "BO": Product.INTRADAY,
    "MTF": Product.MTF, "NRML": Product.MARGIN,
}
PRODUCT_WIRE: dict[Product, str] = {Product.LONGTERM: "LONGTERM", Product.INTRADAY: "INTRADAY", Product.MTF: "MTF"}
#: the position book's words, used by ``conversion``
POSITION_PRODUCT_WIRE: dict[Product, str] = {Product.LONGTERM: "CNC", Product.INTRADAY: "MIS", Product.MTF: "MTF"}
VALIDITY: dict[str, TimeInForce] = {"DAY": TimeInForce.DAY, "IOC": TimeInForce.IOC}
VALIDITY_WIRE: dict[TimeInForce, str] = {v: k for k, v in VALIDITY.items()}


def enum(table: dict[str, Any], value: Any, what: str) -> Any:
    """``table[value]`` compared case-insensitively; ``BadResponse`` for a word not in the table."""
    word = str(value or "").strip().upper()
    if word not in table:
        raise BadResponse(f"unknown Alice Blue {what} {value!r}")
    return table[word]


def dec(value: Any, what: str, default: Decimal | None = None) -> Decimal:
    """A wire number (int, ``Decimal`` or numeric string) as ``Decimal``; ``BadResponse`` otherwise."""
    if value is None or value == "":
        if default is not None:
            return default
        raise BadResponse(f"Alice Blue {what} is missing")
    if isinstance(value, bool):
        raise BadResponse(f"Alice Blue {what} is not a number: {value!r}")
    try:
        result = Decimal(value) if isinstance(value, int | Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise BadResponse(f"Alice Blue {what} is not a number: {value!r}") from None
    if not result.is_finite():
        raise BadResponse(f"Alice Blue {what} is not a number: {value!r}")
    return result


def money(value: Any, what: str) -> Money | None:
    """A rupee amount; ``None`` for 0 / missing (Alice Blue's "unset")."""
    amount = dec(value, what, Decimal(0))
    return Money(amount, CURRENCY) if amount else None


def parse_time(value: Any) -> datetime | None:
    """``"2025-05-26 11:42:10"`` (IST) → UTC; ``""`` → ``None``."""
    text = str(value or "").strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%d-%b-%Y %H:%M:%S", "%H:%M:%S %d-%m-%Y"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=IST).astimezone(UTC)
        except ValueError:
            continue
    raise BadResponse(f"unknown Alice Blue time {text!r}")


def plain_symbol(trading_symbol: str) -> str:
    """``ACC-EQ`` → ``ACC`` (the NSE equity series suffix); BSE symbols have none."""
    return trading_symbol[:-3] if trading_symbol.upper().endswith("-EQ") else trading_symbol


def _tag(value: Any) -> str | None:
    text = str(value or "").strip()
    return None if text in ("", "--") else text


def parse_order(row: dict[str, Any], connection: str, isin: str | None = None) -> Order:
    """One item of ``orders/book`` / ``orders/history``."""
    try:
        quantity = dec(row["quantity"], "quantity")
        filled = dec(row.get("filledQuantity"), "filledQuantity", Decimal(0))
        status = enum(ORDER_STATUS, row["orderStatus"], "orderStatus")
        if status is OrderStatus.SUBMITTED and 0 < filled < quantity:
            status = OrderStatus.PARTIALLY_FILLED
        order_type = enum(ORDER_TYPE, row["orderType"], "orderType")
        symbol = str(row.get("tradingSymbol") or "")
        instrument = Instrument(
            symbol=plain_symbol(symbol), isin=isin, name=row.get("formattedInstrumentName") or None,
            exchange=str(row.get("exchange") or "") or None, currency=CURRENCY,
            broker_instrument_id=str(row.get("instrumentId") or "") or None,
        )
        limit = money(row.get("price"), "price") if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
        stop = money(row.get("slTriggerPrice"), "slTriggerPrice") \
            if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None
        return Order(
            key=OrderKey(connection, str(row["clientId"]), str(row["brokerOrderId"])),
            instrument=instrument,
            side=enum(SIDE, row["transactionType"], "transactionType"),
            type=order_type,
            quantity=quantity,
            status=status,
            broker_status=str(row["orderStatus"]),
            filled_quantity=filled,
            limit_price=limit,
            stop_price=stop,
            average_fill_price=money(row.get("averageTradedPrice"), "averageTradedPrice"),
            time_in_force=enum(VALIDITY, row.get("validity"), "validity"),
            created_at=parse_time(row.get("orderTime")),
            updated_at=parse_time(row.get("brokerUpdateTime") or row.get("exchangeUpdateTime")),
            client_order_id=_tag(row.get("orderTag")),
            product=enum(PRODUCT, row["product"], "product") if row.get("product") else None,
            notes=str(row.get("rejectionReason") or "") or None,
            raw=row,
        )
    except KeyError as exc:
        raise BadResponse(f"Alice Blue order item without {exc.args[0]!r}") from None
