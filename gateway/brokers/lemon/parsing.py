"""lemon wire JSON → domain objects; the only place lemon's integers meet ``Decimal``.

Money: lemon integers are 1/10 000 EUR (``10000`` = 1.00 EUR); there is no currency field, every
amount is EUR (lemon.md §3). Timestamps: ``YYYY-MM-DDTHH:MM:SS.mmm+00:00``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ...domain.enums import AccountKind, AssetClass, Broker, OrderSide, OrderStatus, OrderType, TimeInForce
from ...domain.errors import BadResponse
from ...domain.keys import AccountKey, OrderKey, PositionKey
from ...domain.models import Account, Instrument, Money, Order, Position

__all__ = ["INSTRUMENT_TYPES", "STATUSES", "parse_account", "parse_order", "parse_position", "to_units",
           "to_wire_money"]

CURRENCY = "EUR"
#: the market-data ``type`` of an instrument → asset class
INSTRUMENT_TYPES: dict[str, AssetClass] = {"stock": AssetClass.STOCK, "etf": AssetClass.ETF, "fund": AssetClass.FUND,
                                           "bond": AssetClass.BOND, "warrant": AssetClass.WARRANT}
SCALE = Decimal(10000)

#: lemon status word → normalised status (lemon.md §8; Dart spellings accepted on read)
STATUSES: dict[str, OrderStatus] = {
    "inactive": OrderStatus.PENDING_ACTIVATION,
    "activated": OrderStatus.PENDING_SUBMIT,
    "active": OrderStatus.PENDING_SUBMIT,
    "open": OrderStatus.SUBMITTED,
    "in_progress": OrderStatus.PARTIALLY_FILLED,
    "executed": OrderStatus.FILLED,
    "canceling": OrderStatus.PENDING_CANCEL,
    "cancelling": OrderStatus.PENDING_CANCEL,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
#: normalised status → the words to ask lemon for (``GET orders?status=``)
STATUS_QUERY: dict[OrderStatus, tuple[str, ...]] = {}
for _word, _status in STATUSES.items():
    if _word not in ("active", "cancelling", "cancelled"):
        STATUS_QUERY.setdefault(_status, ())
        STATUS_QUERY[_status] += (_word,)

TYPES: dict[str, OrderType] = {
    "market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP, "stop_limit": OrderType.STOP_LIMIT,
}
SIDES: dict[str, OrderSide] = {"buy": OrderSide.BUY, "sell": OrderSide.SELL}


def to_units(value: Any) -> Decimal | None:
    """lemon integer money → ``Decimal`` EUR (``66140`` → ``6.614``); ``None`` stays ``None``."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadResponse(f"lemon money must be an integer, got {value!r}")
    return Decimal(value) / SCALE


def to_wire_money(value: Decimal) -> int:
    """``Decimal`` EUR → lemon integer; raises ``ValueError`` when it is finer than 1/10 000."""
    scaled = value * SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than 4 decimal places")
    return int(scaled)


def _money(value: Any) -> Money | None:
    units = to_units(value)
    return None if units is None else Money(units, CURRENCY)


def parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadResponse(f"lemon timestamp {value!r} is not ISO 8601") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _lookup(table: dict[str, Any], value: Any, what: str) -> Any:
    try:
        return table[str(value).lower()]
    except KeyError:
        raise BadResponse(f"unknown lemon {what} {value!r}") from None


def instrument(isin: str, title: str | None) -> Instrument:
    return Instrument(symbol=None, isin=isin, name=title, exchange="XMUN", currency=CURRENCY,
                      asset_class=None, broker_instrument_id=isin)


def parse_account(connection: str, body: dict[str, Any]) -> Account:
    """``GET account`` results → :class:`Account` keyed by ``account_id``."""
    name = " ".join(p for p in (body.get("firstname"), body.get("lastname")) if p) or None
    return Account(
        key=AccountKey(connection, str(body["account_id"])),
        broker=Broker.LEMON,
        display_name=name,
        base_currency=CURRENCY,
        kind=AccountKind.INDIVIDUAL,
        cash=_money(body.get("cash_to_invest")),
        raw=body,
    )


def parse_order(connection: str, account_id: str, body: dict[str, Any]) -> Order:
    """An order object (``GET orders``, ``GET orders/{id}``, ``POST orders``) → :class:`Order`."""
    stop, limit = to_units(body.get("stop_price")), to_units(body.get("limit_price"))
    if body.get("type") is not None:
        order_type = _lookup(TYPES, body["type"], "order type")
    else:  # the create response has no type: infer it from the prices (lemon.md §7)
        order_type = (OrderType.STOP_LIMIT if stop is not None and limit is not None else OrderType.LIMIT
                      if limit is not None else OrderType.STOP if stop is not None else OrderType.MARKET)
    filled = Decimal(body.get("executed_quantity") or 0)
    status_word = str(body["status"])
    times = [parse_time(body.get(k)) for k in ("created_at", "activated_at", "executed_at", "cancelled_at",
                                                "rejected_at")]
    known = [t for t in times if t is not None]
    return Order(
        key=OrderKey(connection, account_id, str(body["id"])),
        instrument=instrument(str(body["isin"]), body.get("isin_title")),
        side=_lookup(SIDES, body["side"], "side"),
        type=order_type,
        quantity=Decimal(body["quantity"]),
        status=_lookup(STATUSES, status_word, "order status"),
        broker_status=status_word,
        filled_quantity=filled,
        limit_price=None if limit is None else Money(limit, CURRENCY),
        stop_price=None if stop is None else Money(stop, CURRENCY),
        average_fill_price=_money(body.get("executed_price")) if filled else None,
        time_in_force=TimeInForce.GTD,
        expires_at=parse_time(body.get("expires_at")),
        created_at=times[0],
        updated_at=max(known) if known else None,
        client_order_id=body.get("idempotency"),
        notes=body.get("notes"),
        raw=body,
    )


def parse_position(connection: str, account_id: str, body: dict[str, Any], as_of: datetime) -> Position:
    """A ``GET positions`` item → :class:`Position` (long only; lemon has no shorts)."""
    quantity = Decimal(body["quantity"])
    avg = _money(body.get("buy_price_avg"))
    price = _money(body.get("estimated_price"))
    value = _money(body.get("estimated_price_total"))
    pnl = None
    if value is not None and avg is not None:
        pnl = Money(value.amount - avg.amount * quantity, CURRENCY)
    isin = str(body["isin"])
    return Position(
        key=PositionKey(connection, account_id, isin),
        instrument=instrument(isin, body.get("isin_title")),
        quantity=quantity,
        as_of=as_of,
        average_price=avg,
        market_price=price,
        market_value=value,
        unrealized_pnl=pnl,
        raw=body,
    )


