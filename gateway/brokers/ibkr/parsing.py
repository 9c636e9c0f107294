"""IBKR wire JSON → domain objects (ibkr.md §3, §5, §6, §9, §10, §16, §17).

Explicit enum maps; an unmapped value raises ``BadResponse``. IBKR mixes strings and numbers for
prices and quantities (``price`` ``"0.90000"`` / ``""``, ``filledQuantity`` ``5.0``); everything
becomes ``Decimal`` here.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ...domain.enums import (
    AccountKind,
    AllocationMethod,
    AssetClass,
    Broker,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from ...domain.errors import BadResponse
from ...domain.keys import AccountKey, AllocationGroupKey, OrderKey, PositionKey
from ...domain.models import Account, AllocationGroup, AllocationMember, Instrument, Money, Order, Position

__all__ = [
    "LISTING_CURRENCY", "ORDER_STATUS", "currency_of", "parse_account", "parse_allocation_group", "parse_ledger_cash",
    "parse_live_order", "parse_order_status", "parse_position", "parse_contract", "status_of",
]

ORDER_STATUS: dict[str, OrderStatus] = {
    "Inactive": OrderStatus.PENDING_ACTIVATION,
    "PendingSubmit": OrderStatus.PENDING_SUBMIT,
    "PreSubmitted": OrderStatus.SUBMITTED,
    "Submitted": OrderStatus.SUBMITTED,
    "WarnState": OrderStatus.SUBMITTED,
    "Filled": OrderStatus.FILLED,
    "PendingCancel": OrderStatus.PENDING_CANCEL,
    "PreCancelled": OrderStatus.PENDING_CANCEL,
    "Cancelled": OrderStatus.CANCELED,
}
ORDER_TYPE: dict[str, OrderType] = {
    "MARKET": OrderType.MARKET, "MKT": OrderType.MARKET, "Market": OrderType.MARKET,
    "LIMIT": OrderType.LIMIT, "LMT": OrderType.LIMIT, "Limit": OrderType.LIMIT,
    "STOP": OrderType.STOP, "STP": OrderType.STOP, "Stop": OrderType.STOP,
    "STOP_LIMIT": OrderType.STOP_LIMIT, "STP_LIMIT": OrderType.STOP_LIMIT, "STOP LIMIT": OrderType.STOP_LIMIT,
    "Stop Limit": OrderType.STOP_LIMIT,
}
#: IBKR's TIF words; ``CLOSE`` is what a filled DAY order reads
TIME_IN_FORCE: dict[str, TimeInForce] = {
    "DAY": TimeInForce.DAY, "CLOSE": TimeInForce.DAY, "GTC": TimeInForce.GTC, "OPG": TimeInForce.OPG,
    "IOC": TimeInForce.IOC,
}
SIDE: dict[str, OrderSide] = {"BUY": OrderSide.BUY, "B": OrderSide.BUY, "BOT": OrderSide.BUY,
                              "SELL": OrderSide.SELL, "S": OrderSide.SELL, "SLD": OrderSide.SELL}
SEC_TYPE: dict[str, AssetClass] = {
    "STK": AssetClass.STOCK, "OPT": AssetClass.OPTION, "FUT": AssetClass.FUTURE, "FOP": AssetClass.OPTION,
    "CASH": AssetClass.CASH, "BOND": AssetClass.BOND, "BILL": AssetClass.BOND, "FUND": AssetClass.FUND,
    "WAR": AssetClass.WARRANT, "IOPT": AssetClass.WARRANT, "CRYPTO": AssetClass.CRYPTO, "CFD": AssetClass.OTHER,
    "IND": AssetClass.OTHER, "CMDTY": AssetClass.OTHER, "BAG": AssetClass.OTHER,
}
ALLOCATION_METHOD: dict[str, AllocationMethod] = {
    "A": AllocationMethod.AVAILABLE_EQUITY, "E": AllocationMethod.EQUAL, "N": AllocationMethod.NET_LIQUIDATION,
    "C": AllocationMethod.CASH_QUANTITY, "P": AllocationMethod.PERCENTAGES, "R": AllocationMethod.RATIOS,
    "S": AllocationMethod.SHARES,
}
#: IBKR listing exchange → MIC
EXCHANGE_MIC: dict[str, str] = {"NASDAQ.NMS": "XNAS", "NASDAQ": "XNAS", "NYSE": "XNYS", "ARCA": "ARCX",
                                "AMEX": "XASE", "BATS": "BATS"}
#: IBKR listing exchange → the currency its listings trade in: the instrument's currency when an
#: answer names none (the order status of a filled order may lack ``currency``, ibkr.md §6)
LISTING_CURRENCY: dict[str, str] = {
    "NASDAQ.NMS": "USD", "NASDAQ": "USD", "NYSE": "USD", "ARCA": "USD", "AMEX": "USD", "BATS": "USD",
    "IBIS": "EUR", "IBIS2": "EUR", "FWB": "EUR", "SBF": "EUR", "AEB": "EUR", "BM": "EUR", "LSE": "GBP",
    "EBS": "CHF", "TSE": "CAD", "SEHK": "HKD", "TSEJ": "JPY", "ASX": "AUD", "NSE": "INR",
}
#: ``type`` of an STK position → asset class (``ETF``; ``COMMON`` and ``""`` stay stocks)
STK_TYPES: dict[str, AssetClass] = {"ETF": AssetClass.ETF, "COMMON": AssetClass.STOCK, "": AssetClass.STOCK,
                                    "PREFERRED": AssetClass.STOCK, "ADR": AssetClass.STOCK}


def _enum(table: dict[str, Any], value: Any, what: str) -> Any:
    try:
        return table[str(value)]
    except KeyError:
        raise BadResponse(f"IBKR sent an unknown {what}: {value!r}") from None


def dec(value: Any) -> Decimal | None:
    """A wire number or numeric string as ``Decimal``; ``None`` for ``""`` / ``null``."""
    if type(value) is Decimal:  # what the HTTP client's JSON decoding makes of a number with a fraction
        return value
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise BadResponse(f"IBKR sent a non-numeric amount: {value!r}") from None


def _req_dec(value: Any, what: str) -> Decimal:
    out = dec(value)
    if out is None:
        raise BadResponse(f"IBKR sent no {what}")
    return out


def _money(value: Any, currency: str | None) -> Money | None:
    amount = dec(value)
    return None if amount is None or currency is None else Money(amount, currency)


def status_of(word: str, filled: Decimal = Decimal(0), system_reason: Any = None) -> OrderStatus:
    """IBKR's status word → OrderStatus: a working order with fills is PARTIALLY_FILLED, a
    ``Cancelled`` one with ``order_cancellation_by_system_reason`` REJECTED."""
    status: OrderStatus = _enum(ORDER_STATUS, word, "order status")
    if status is OrderStatus.SUBMITTED and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    if status is OrderStatus.CANCELED and system_reason:
        return OrderStatus.REJECTED
    return status


def currency_of(*candidates: Any, exchange: Any = None) -> str | None:
    """The first currency among ``candidates`` that is set, else the currency of the listing
    ``exchange`` (:data:`LISTING_CURRENCY`): money IBKR sends without a currency takes the
    instrument's."""
    for value in candidates:
        if value:
            return str(value)
    return LISTING_CURRENCY.get(str(exchange)) if exchange else None


def _instrument(conid: Any, symbol: Any, name: Any, exchange: Any, currency: Any, sec_type: Any,
                kind: Any = None) -> Instrument:
    """The instrument of these wire fields; the same fields give the same (immutable) ``Instrument``
    from a bounded cache, as every page of positions and orders names the same few instruments again."""
    try:
        return _instrument_cached(conid, symbol, name, exchange, currency, sec_type, kind)
    except TypeError:  # a field the wire sent as a list or an object: not a cache key
        return _make_instrument(conid, symbol, name, exchange, currency, sec_type, kind)


def _make_instrument(conid: Any, symbol: Any, name: Any, exchange: Any, currency: Any, sec_type: Any,
                     kind: Any = None) -> Instrument:
    asset = _enum(SEC_TYPE, sec_type, "security type") if sec_type else None
    if asset is AssetClass.STOCK and kind is not None:
        asset = STK_TYPES.get(str(kind).upper(), AssetClass.STOCK)
    return Instrument(symbol=symbol or None, name=name or None,
                      exchange=EXCHANGE_MIC.get(str(exchange), exchange or None), currency=currency or None,
                      asset_class=asset, broker_instrument_id=str(conid))


_instrument_cached = functools.lru_cache(maxsize=4096, typed=True)(_make_instrument)


def parse_live_order(connection: str, item: dict[str, Any], groups: frozenset[str]) -> Order:
    """One ``GET iserver/account/orders`` item. An order whose ``account`` is an allocation group is
    keyed under ``acct`` (the master) with ``allocation_group`` set and ``account_known`` false."""
    try:
        acct, own = str(item["acct"]), str(item.get("account") or item["acct"])
        kind = _enum(ORDER_TYPE, item.get("origOrderType") or item["orderType"], "order type")
        filled = _req_dec(item.get("filledQuantity", 0), "filledQuantity")
        currency = currency_of(item.get("cashCcy"), exchange=item.get("listingExchange"))
        price, aux = dec(item.get("price")), dec(item.get("auxPrice"))
        stamp = item.get("lastExecutionTime_r")
        order_id = str(item["orderId"])
        instrument = _instrument(item["conid"], item.get("ticker"), item.get("companyName"),
                                 item.get("listingExchange"), currency, item.get("secType"))
        side = _enum(SIDE, item["side"], "side")
        status_word = str(item["status"])
        quantity = _req_dec(item["totalSize"], "totalSize") if item.get("totalSize") is not None else \
            filled + _req_dec(item.get("remainingQuantity", 0), "remainingQuantity")
    except KeyError as exc:
        raise BadResponse(f"IBKR live order without {exc.args[0]!r}", connection=connection) from None
    group = AllocationGroupKey(connection, own) if own in groups else None
    limit = price if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    stop = price if kind is OrderType.STOP else aux if kind is OrderType.STOP_LIMIT else None
    avg = dec(item.get("avgPrice"))
    return Order(
        key=OrderKey(connection, acct, order_id), instrument=instrument, side=side, type=kind, quantity=quantity,
        status=status_of(status_word, filled, item.get("order_cancellation_by_system_reason")),
        broker_status=status_word, filled_quantity=filled,
        limit_price=_money(limit, currency), stop_price=_money(stop, currency),
        average_fill_price=_money(avg, currency),
        time_in_force=_enum(TIME_IN_FORCE, item.get("timeInForce", "DAY"), "time in force"),
        updated_at=datetime.fromtimestamp(int(stamp) / 1000, UTC) if stamp else None,
        client_order_id=item.get("order_ref"), allocation_group=group, account_known=group is None, raw=item,
    )


def parse_order_status(connection: str, account: str, body: dict[str, Any], groups: frozenset[str],
                       currency: str | None = None) -> Order:
    """``GET iserver/account/order/status/{orderId}`` (sizes and prices are strings here).

    Money takes the body's ``currency``; a body without one (a recorded filled market order has
    none) takes ``currency`` (the instrument's, when the caller knows it), else the listing
    exchange's currency, so that ``avg_fill_price`` is not lost."""
    try:
        kind = _enum(ORDER_TYPE, body["order_type"], "order type")
        currency = currency_of(body.get("currency"), currency, exchange=body.get("listing_exchange"))
        word = str(body["order_status"])
        filled = dec(body.get("cum_fill")) or dec(body.get("filled_quantity")) or Decimal(0)
        instrument = _instrument(body["conid"], body.get("symbol"), body.get("company_name"),
                                 body.get("listing_exchange"), currency, body.get("sec_type"))
        own = str(body.get("account") or account)
        order = Order(
            key=OrderKey(connection, account, str(body["order_id"])), instrument=instrument,
            side=_enum(SIDE, body["side"], "side"), type=kind, quantity=_req_dec(body["total_size"], "total_size"),
            status=status_of(word, filled), broker_status=word, filled_quantity=filled,
            limit_price=_money(body.get("limit_price"), currency), stop_price=_money(body.get("stop_price"), currency),
            average_fill_price=_money(body.get("average_price") or body.get("avg_fill_price"), currency),
            time_in_force=_enum(TIME_IN_FORCE, body.get("tif", "DAY"), "time in force"),
            allocation_group=AllocationGroupKey(connection, own) if own in groups else None,
            account_known=own not in groups, raw=body,
        )
    except KeyError as exc:
        raise BadResponse(f"IBKR order status without {exc.args[0]!r}", connection=connection) from None
    return order


def parse_position(connection: str, account: str, item: dict[str, Any], as_of: datetime) -> Position:
    """One ``GET portfolio/{accountId}/positions/{pageId}`` item."""
    try:
        currency = currency_of(item.get("currency"), exchange=item.get("listingExchange"))
        instrument = _instrument(item["conid"], item.get("ticker") or item.get("contractDesc"),
                                 item.get("name") or item.get("fullName"), item.get("listingExchange"), currency,
                                 item.get("assetClass"), item.get("type"))
        quantity = _req_dec(item["position"], "position")
    except KeyError as exc:
        raise BadResponse(f"IBKR position without {exc.args[0]!r}", connection=connection) from None
    return Position(
        key=PositionKey(connection, account, str(item["conid"]), ""), instrument=instrument, quantity=quantity,
        as_of=as_of, average_price=_money(item.get("avgPrice"), currency),
        market_price=_money(item.get("mktPrice"), currency), market_value=_money(item.get("mktValue"), currency),
        unrealized_pnl=_money(item.get("unrealizedPnl"), currency),
        realized_pnl=_money(item.get("realizedPnl"), currency), raw=item,
    )


def parse_account(connection: str, item: dict[str, Any], kind: AccountKind, groups: tuple[str, ...] = ()) -> Account:
    """One ``portfolio/accounts`` / ``portfolio/subaccounts`` item."""
    try:
        number = str(item["accountId"] if "accountId" in item else item["id"])
    except KeyError:
        raise BadResponse("IBKR account without an id", connection=connection) from None
    return Account(key=AccountKey(connection, number), broker=Broker.IBKR,
                   display_name=item.get("displayName") or item.get("accountTitle") or number,
                   base_currency=item.get("currency"), kind=kind, allocation_group_names=groups, raw=item)


def parse_ledger_cash(body: Any, currency: str | None) -> Money | None:
    """``GET portfolio/{accountId}/ledger`` → the account's cash: ``cashbalance`` of the
    ``currency`` entry (the account's base currency), else of ``BASE`` in ``currency``; ``None``
    when the answer has neither (the master's cash, which ``iserver/account/allocation/accounts``
    does not list)."""
    if not isinstance(body, dict) or not currency:
        return None
    for key in (currency, "BASE"):
        row = body.get(key)
        if isinstance(row, dict) and row.get("cashbalance") is not None:
            amount = dec(row["cashbalance"])
            return None if amount is None else Money(amount, currency)
    return None


def parse_allocation_group(connection: str, body: dict[str, Any], master: str | None) -> AllocationGroup:
    """``POST iserver/account/allocation/group/single`` → AllocationGroup (``amount`` absent for
    the IB-computed methods A / E / N)."""
    try:
        members = tuple(AllocationMember(AccountKey(connection, str(m["name"])), dec(m.get("amount")))
                        for m in body["accounts"])
        return AllocationGroup(key=AllocationGroupKey(connection, str(body["name"])),
                               method=_enum(ALLOCATION_METHOD, body["default_method"], "allocation method"),
                               members=members, master_account=master, raw=body)
    except KeyError as exc:
        raise BadResponse(f"IBKR allocation group without {exc.args[0]!r}", connection=connection) from None


def parse_contract(item: dict[str, Any]) -> Instrument:
    """One ``iserver/secdef/search`` result (``conid`` a string or a number, per version)."""
    if "conid" not in item:
        raise BadResponse("IBKR contract without conid")
    sec = next((s.get("secType") for s in item.get("sections") or [] if s.get("secType")), "STK")
    return _instrument(item["conid"], item.get("symbol"), item.get("companyName"), item.get("description"),
                       None, sec)
