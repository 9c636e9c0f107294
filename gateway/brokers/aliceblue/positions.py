"""Holdings and the position book → one ``Position`` per (exchange, instrumentId, product).

Alice Blue reports a delivery position in two places: the DEMAT holding (``holdings/{CNC|MTF}``,
start of day, does not move intraday) and the day's line in ``positions`` (product ``CNC`` /
``MTF``; a carried-forward line repeats yesterday's quantity as ``overnightQuantity``, which the
holding already counts as ``t1Quantity``). The merge rule:

* LONGTERM / MTF: ``quantity`` = holding total + the day's net (``netQuantity - overnightQuantity``);
  without a holding, ``netQuantity``. The holding total is ``totalQuantity``, or ``dpQuantity +
  t1Quantity + collateralQuantity`` when ``totalQuantity`` is 0 (the documented example has
  ``totalQuantity: 0`` beside ``dpQuantity: 36``).
* INTRADAY (``MIS``) and MARGIN (``NRML``): ``netQuantity``.
* A holding is listed under its NSE instrumentId (BSE when it has none); a BSE day line of the same
  stock stays a line of its own.

``extra`` holds the settlement quantities as ``Decimal`` under the broker's own field names (what
GraphQL shows as ``Position.settlement``), those the broker sent: from the holding ``dpQuantity``,
``t1Quantity``, ``collateralQuantity``, ``authorizedQuantity``, ``sellableQty`` and
``totalQuantity`` (the holding total of the rule above); from the day's line ``dayBuyQuantity``,
``daySellQuantity``, ``overnightQuantity``, ``netQuantity``. The position key's ``instrument_id``
is ``"NSE|22"`` (exchange and instrumentId, as Alice Blue's streaming keys spell it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from ...domain.enums import Product
from ...domain.keys import PositionKey
from ...domain.models import Instrument, Money, Position
from .parsing import CURRENCY, PRODUCT, dec, enum, plain_symbol

__all__ = ["merge_positions", "position_key_id", "wire_listing"]

_HOLDING_EXTRA = ("dpQuantity", "t1Quantity", "collateralQuantity", "authorizedQuantity", "sellableQty")
_DAY_EXTRA = ("dayBuyQuantity", "daySellQuantity", "overnightQuantity", "netQuantity")

Line = tuple[str, str, Product]


def position_key_id(exchange: str, instrument_id: str) -> str:
    return f"{exchange}|{instrument_id}"


def _holding_line(row: dict[str, Any], product: Product) -> Line:
    if row.get("nseInstrumentId"):
        return "NSE", str(row["nseInstrumentId"]), product
    return "BSE", str(row.get("bseInstrumentId") or ""), product


def holding_total(row: dict[str, Any]) -> Decimal:
    total = dec(row.get("totalQuantity"), "totalQuantity", Decimal(0))
    if total:
        return total
    return sum((dec(row.get(k), k, Decimal(0)) for k in ("dpQuantity", "t1Quantity", "collateralQuantity")),
               Decimal(0))


def merge_positions(holdings: list[tuple[dict[str, Any], Product]], lines: list[dict[str, Any]], connection: str,
                    account_number: str, as_of: datetime,
                    isin_for: Callable[[str, str], str | None]) -> list[Position]:
    """Holdings (each with the product of the endpoint it came from) + position lines → positions."""
    merged: dict[Line, dict[str, dict[str, Any]]] = {}
    for row, product in holdings:
        merged.setdefault(_holding_line(row, product), {})["holding"] = row
    for row in lines:
        line = (str(row.get("exchange") or ""), str(row.get("instrumentId") or ""),
                enum(PRODUCT, row.get("product"), "product"))
        merged.setdefault(line, {})["day"] = row
    out = []
    for (exchange, token, product), parts in merged.items():
        out.append(_position(exchange, token, product, parts.get("holding"), parts.get("day"), connection,
                             account_number, as_of, isin_for))
    return out


def _position(exchange: str, token: str, product: Product, holding: dict[str, Any] | None,
              day: dict[str, Any] | None, connection: str, account_number: str, as_of: datetime,
              isin_for: Callable[[str, str], str | None]) -> Position:
    extra: dict[str, Decimal] = {}
    for source, names in ((holding, _HOLDING_EXTRA), (day, _DAY_EXTRA)):
        for wire in names:
            if source is not None and source.get(wire) not in (None, ""):
                extra[wire] = dec(source[wire], wire)
    net = dec(day.get("netQuantity"), "netQuantity", Decimal(0)) if day else Decimal(0)
    overnight = dec(day.get("overnightQuantity"), "overnightQuantity", Decimal(0)) if day else Decimal(0)
    avg: Decimal | None = None
    market: Decimal | None = None
    if holding is not None and product in (Product.LONGTERM, Product.MTF):
        held = holding_total(holding)
        extra["totalQuantity"] = held
        quantity = held + net - overnight
        avg = dec(holding.get("averageTradedPrice"), "averageTradedPrice", Decimal(0))
        day_buy = dec(day.get("dayBuyQuantity"), "dayBuyQuantity", Decimal(0)) if day else Decimal(0)
        if day and day_buy and held + day_buy:
            day_px = dec(day.get("dayBuyPrice"), "dayBuyPrice", Decimal(0))
            avg = (held * avg + day_buy * day_px) / (held + day_buy)
        market = dec(holding.get("ltp"), "ltp", Decimal(0)) or None
        symbol = str(holding.get("nseTradingSymbol" if exchange == "NSE" else "bseTradingSymbol") or "")
    else:
        quantity = net
        avg = dec(day.get("netAveragePrice"), "netAveragePrice", Decimal(0)) if day else None
        symbol = str(day.get("tradingSymbol") or "") if day else ""
    isin = (str(holding.get("isin")) if holding and holding.get("isin") else None) or isin_for(exchange, token)
    name = (holding or day or {}).get("formattedInstrumentName") or None
    instrument = Instrument(symbol=plain_symbol(symbol) or None, isin=isin, name=name, exchange=exchange,
                            currency=CURRENCY, broker_instrument_id=token)
    realized = dec(day.get("realizedPnl"), "realizedPnl", Decimal(0)) if day else None
    return Position(
        key=PositionKey(connection, account_number, position_key_id(exchange, token), product.name),
        instrument=instrument,
        quantity=quantity,
        as_of=as_of,
        average_price=Money(avg, CURRENCY) if avg else None,
        market_price=Money(market, CURRENCY) if market else None,
        market_value=Money(market * quantity, CURRENCY) if market else None,
        unrealized_pnl=Money((market - avg) * quantity, CURRENCY) if market and avg else None,
        realized_pnl=Money(realized, CURRENCY) if realized is not None else None,
        product=product,
        extra=extra,
        raw={"holding": holding, "position": day},
    )


def wire_listing(position: Position) -> tuple[str, str, str]:
    """``(exchange, instrumentId, tradingSymbol)`` of a position, as the order endpoints name it."""
    exchange, _, token = position.key.instrument_id.partition("|")
    day = position.raw.get("position") or {}
    holding = position.raw.get("holding") or {}
    symbol = day.get("tradingSymbol") or holding.get("nseTradingSymbol" if exchange == "NSE" else "bseTradingSymbol")
    return exchange, token, str(symbol or position.instrument.symbol or "")
