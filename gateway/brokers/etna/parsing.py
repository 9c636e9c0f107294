"""ETNA wire JSON → domain objects. Enum maps are explicit; an unmapped value is a BadResponse.

Wire facts handled here (see the wire reference): timestamps with 0–7 fractional digits and
``0001-01-01T00:00:00Z`` for "not set"; ``Price`` / ``StopPrice`` are ``0`` when not used;
``LeavesQuantity`` is ``0`` while ``PendingNew``; orders carry only ``SecurityId`` (the instrument
comes from :mod:`.securities`); positions come as a bare array or as a PagingResult.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ...domain.enums import AccountKind, AssetClass, Broker, OrderSide, OrderStatus, OrderType, TimeInForce
from ...domain.errors import BadResponse
from ...domain.keys import AccountKey, OrderKey, PositionKey
from ...domain.models import Account, Instrument, Money, Order, Position

__all__ = [
    "ACCOUNT_CURRENCY", "ORDER_STATUS_CODES", "SIDE_TO_WIRE", "STATUSES", "TIF_TO_WIRE", "TYPE_TO_WIRE",
    "instrument_from_equity", "instrument_from_position", "parse_account", "parse_order", "parse_page",
    "parse_position", "parse_time", "parse_total", "with_security",
]

SIDES: dict[str, OrderSide] = {"Buy": OrderSide.BUY, "Sell": OrderSide.SELL, "SellShort": OrderSide.SELL,
                               "BuyToCover": OrderSide.BUY}
SIDE_TO_WIRE: dict[OrderSide, str] = {OrderSide.BUY: "Buy", OrderSide.SELL: "Sell"}

TYPE_TO_WIRE: dict[OrderType, str] = {OrderType.MARKET: "Market", OrderType.LIMIT: "Limit",
                                      OrderType.STOP: "Stop", OrderType.STOP_LIMIT: "StopLimit"}
TYPES: dict[str, OrderType] = {v: k for k, v in TYPE_TO_WIRE.items()}

TIF_TO_WIRE: dict[TimeInForce, str] = {TimeInForce.DAY: "Day", TimeInForce.GTC: "GoodTillCancel",
                                       TimeInForce.GTD: "GoodTillDate", TimeInForce.IOC: "ImmediateOrCancel",
                                       TimeInForce.FOK: "FillOrKill", TimeInForce.OPG: "AtTheOpening"}
TIFS: dict[str, TimeInForce] = {**{v: k for k, v in TIF_TO_WIRE.items()}, "GoodTillTime": TimeInForce.GTD}

#: OrderResource ``Status`` → normalised status
STATUSES: dict[str, OrderStatus] = {
    "PendingNew": OrderStatus.PENDING_SUBMIT, "New": OrderStatus.SUBMITTED, "Replaced": OrderStatus.SUBMITTED,
    "PendingReplace": OrderStatus.SUBMITTED, "Stopped": OrderStatus.SUBMITTED, "Suspended": OrderStatus.SUBMITTED,
    "Calculated": OrderStatus.SUBMITTED, "AcceptedForBidding": OrderStatus.SUBMITTED, "Held": OrderStatus.SUBMITTED,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED, "Filled": OrderStatus.FILLED,
    "PendingCancel": OrderStatus.PENDING_CANCEL, "Canceled": OrderStatus.CANCELED,
    "DoneForDay": OrderStatus.EXPIRED, "Expired": OrderStatus.EXPIRED,
    "Rejected": OrderStatus.REJECTED, "Error": OrderStatus.REJECTED,
}
#: ``Status`` → the numeric code ``Status in (…)`` filters take (``Held`` has none)
ORDER_STATUS_CODES: dict[str, int] = {
    "New": 0, "PartiallyFilled": 1, "Filled": 2, "DoneForDay": 3, "Canceled": 4, "Replaced": 5,
    "PendingCancel": 6, "Stopped": 7, "Rejected": 8, "Suspended": 9, "PendingNew": 10, "Calculated": 11,
    "Expired": 12, "AcceptedForBidding": 13, "PendingReplace": 14, "Error": 15,
}

#: the 41 ``SecurityType`` values → asset class
SECURITY_TYPES: dict[str, AssetClass] = {
    "BankersAcceptance": AssetClass.OTHER, "CertificateOfDeposit": AssetClass.OTHER,
    "CollateralizeMortgageObligation": AssetClass.BOND, "CorporateBond": AssetClass.BOND,
    "CommercialPaper": AssetClass.OTHER, "CorporatePrivatePlacement": AssetClass.OTHER,
    "CommonStock": AssetClass.STOCK, "FederalHousingAuthority": AssetClass.BOND, "FederalHomeLoan": AssetClass.BOND,
    "FederalNationalMortgageAssociation": AssetClass.BOND, "ForeignExchangeContract": AssetClass.OTHER,
    "Future": AssetClass.FUTURE, "GovernmentNationalMortgageAssociation": AssetClass.BOND,
    "TreasuriesPlusAgencyDebenture": AssetClass.BOND, "MutualFund": AssetClass.FUND,
    "MortgageInterestOnly": AssetClass.BOND, "MortgagePrincipleOnly": AssetClass.BOND,
    "MortgagePrivatePlacement": AssetClass.BOND, "MiscellaneousPassThru": AssetClass.BOND,
    "MunicipalBond": AssetClass.BOND, "NoIsitcSecurityType": AssetClass.OTHER, "Option": AssetClass.OPTION,
    "PreferredStock": AssetClass.STOCK, "RepurchaseAgreement": AssetClass.OTHER,
    "ReverseRepurchaseAgreement": AssetClass.OTHER, "StudentLoanMarketingAssociation": AssetClass.BOND,
    "TimeDeposit": AssetClass.OTHER, "UsTreasuryBill": AssetClass.BOND, "Warrant": AssetClass.WARRANT,
    "CatsTigersLions": AssetClass.BOND, "WildcardEntry": AssetClass.OTHER, "ConvertibleBond": AssetClass.BOND,
    "MortgageIoette": AssetClass.BOND, "Index": AssetClass.OTHER, "FakeStockForNonStandartOption": AssetClass.OPTION,
    "Right": AssetClass.OTHER, "Cryptocurrency": AssetClass.CRYPTO, "ETF": AssetClass.ETF,
    "DepositoryReceipt": AssetClass.STOCK, "CoveredWarrant": AssetClass.WARRANT, "Unit": AssetClass.OTHER,
}

#: ``OwnerType`` → account kind; any other owner type is ``OTHER`` (the word stays in ``raw``)
OWNER_TYPES: dict[str, AccountKind] = {"IndividualCustomer": AccountKind.INDIVIDUAL}

_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})?$")


def _lookup(table: dict[str, Any], value: Any, what: str) -> Any:
    try:
        return table[value]
    except (KeyError, TypeError):
        raise BadResponse(f"unknown ETNA {what} {value!r}") from None


def parse_time(value: Any) -> datetime | None:
    """A wire timestamp as an aware UTC datetime; ``None`` for null or ``0001-01-01T00:00:00Z``."""
    if value is None:
        return None
    m = _TIME.match(str(value))
    if m is None:
        raise BadResponse(f"unreadable ETNA timestamp {value!r}")
    base = datetime.fromisoformat(m.group(1) + (m.group(3) or "Z").replace("Z", "+00:00")).astimezone(UTC)
    if base.year == 1 and base.month == 1 and base.day == 1:
        return None
    return base + timedelta(microseconds=int((m.group(2) or "0").ljust(7, "0")) // 10)


def dec(value: Any, what: str = "number") -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str | float):
        raise BadResponse(f"ETNA {what} is not a number: {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise BadResponse(f"ETNA {what} is not a number: {value!r}") from None


def parse_page(body: Any, page_size: int) -> tuple[list[dict[str, Any]], bool]:
    """Items of one page and whether another page follows: a PagingResult tells by
    ``NextPageLink`` (``""`` on the last page), a bare array by being full."""
    if isinstance(body, list):
        return body, len(body) >= page_size
    if isinstance(body, dict) and isinstance(body.get("Result"), list):
        return body["Result"], bool(body.get("NextPageLink"))
    raise BadResponse("ETNA list answer is neither an array nor a PagingResult")


def parse_total(body: Any) -> int | None:
    """A PagingResult's ``TotalCount`` (the filtered list's size); ``None`` for a bare array."""
    if isinstance(body, dict) and isinstance(body.get("TotalCount"), int) and not isinstance(body["TotalCount"], bool):
        return int(body["TotalCount"])
    return None


#: ETNA accounts are US-dollar accounts: every amount the API documents is USD and no account
#: resource names a currency (the wire reference, §7)
ACCOUNT_CURRENCY = "USD"


def parse_account(raw: dict[str, Any], connection: str, info: dict[str, Any] | None = None) -> Account:
    """An item of ``GET v1.0/users/{userId}/accounts``; ``info`` is the account's
    ``GET v1.0/accounts/{id}/info`` body, whose ``cash`` becomes the account's cash (USD)."""
    owners = raw.get("Owners") or []
    name = " ".join(p for p in (owners[0].get("FirstName"), owners[0].get("LastName")) if p) if owners else ""
    cash = info.get("cash") if isinstance(info, dict) else None
    return Account(
        key=AccountKey(connection, str(raw["Id"])), broker=Broker.ETNA,
        display_name=f"{raw.get('ClearingAccount', raw['Id'])}" + (f" ({name})" if name else ""),
        base_currency=ACCOUNT_CURRENCY, kind=OWNER_TYPES.get(str(raw.get("OwnerType")), AccountKind.OTHER),
        cash=None if cash is None else Money(dec(cash, "cash"), ACCOUNT_CURRENCY), raw=raw,
    )


def instrument_from_position(raw: dict[str, Any]) -> Instrument:
    return Instrument(symbol=raw.get("Symbol"), name=raw.get("CompanyName") or raw.get("Name"),
                      currency=raw.get("SecurityCurrency"),
                      asset_class=_lookup(SECURITY_TYPES, raw.get("SecurityType"), "SecurityType"),
                      broker_instrument_id=str(raw["SecurityId"]))


def instrument_from_equity(raw: dict[str, Any]) -> Instrument:
    """``GET v1.0/equities/{id}`` → instrument (``Exchange`` is a MIC on ETNA). The published
    EquityResource has no ISIN; an ``Isin`` the deployment sends (the sandbox does) is kept."""
    isin = raw.get("Isin") or raw.get("ISIN")
    return Instrument(symbol=raw.get("Symbol"), isin=str(isin) if isin else None, name=raw.get("Description"),
                      exchange=raw.get("Exchange"), currency=raw.get("Currency"),
                      asset_class=_lookup(SECURITY_TYPES, raw.get("Type"), "Type"), broker_instrument_id=str(raw["Id"]))


def with_security(position_instrument: Instrument, security: Instrument) -> Instrument:
    """A position's instrument completed by its security look-up: ``exchange`` and ``isin``, which
    positions lack (the position's own symbol, name and currency stay)."""
    return Instrument(symbol=position_instrument.symbol or security.symbol,
                      isin=position_instrument.isin or security.isin,
                      name=position_instrument.name or security.name,
                      exchange=position_instrument.exchange or security.exchange,
                      currency=position_instrument.currency or security.currency,
                      asset_class=position_instrument.asset_class or security.asset_class,
                      broker_instrument_id=position_instrument.broker_instrument_id)


def _money(value: Any, currency: str, what: str) -> Money | None:
    if value is None:
        return None
    return Money(dec(value, what), currency)


def parse_position(raw: dict[str, Any], connection: str, account_number: str, as_of: datetime,
                   security: Instrument | None = None) -> Position:
    """A ``PositionResource``; ``MarketValueEOD`` is the market value, ``CostBasis`` the cost;
    ``security`` (the ``SecurityId``'s look-up) adds the exchange and ISIN positions lack."""
    instrument = instrument_from_position(raw)
    if security is not None:
        instrument = with_security(instrument, security)
    currency = instrument.currency or "USD"
    quantity = dec(raw.get("Quantity"), "Quantity")
    market_value = _money(raw.get("MarketValueEOD"), currency, "MarketValueEOD")
    cost = dec(raw["CostBasis"], "CostBasis") if raw.get("CostBasis") is not None else None
    unrealized = Money(market_value.amount - cost, currency) if market_value and cost is not None else None
    market_price = Money(market_value.amount / quantity, currency) if market_value and quantity else None
    extra = {k: dec(raw[k], k) for k in ("CostBasis", "DailyCostBasis", "DayQuantity") if raw.get(k) is not None}
    return Position(
        key=PositionKey(connection, account_number, str(raw["SecurityId"])), instrument=instrument,
        quantity=quantity, as_of=as_of, average_price=_money(raw.get("AverageOpenPrice"), currency, "AverageOpenPrice"),
        market_price=market_price, market_value=market_value, unrealized_pnl=unrealized,
        realized_pnl=_money(raw.get("RealizedProfitLoss"), currency, "RealizedProfitLoss"), extra=extra, raw=raw,
    )


def parse_order(raw: dict[str, Any], connection: str, account_number: str, instrument: Instrument) -> Order:
    """An ``OrderResource``; ``instrument`` is the security of its ``SecurityId``."""
    currency = instrument.currency or "USD"
    type_ = _lookup(TYPES, raw.get("Type"), "order Type")
    status_word = str(raw.get("Status"))
    filled = dec(raw.get("ExecutedQuantity", 0), "ExecutedQuantity")
    price, stop = dec(raw.get("Price") or 0, "Price"), dec(raw.get("StopPrice") or 0, "StopPrice")
    avg = dec(raw.get("AveragePrice") or 0, "AveragePrice")
    client_id = raw.get("ClientId")
    return Order(
        key=OrderKey(connection, account_number, str(raw["Id"])), instrument=instrument,
        side=_lookup(SIDES, raw.get("Side"), "Side"), type=type_, quantity=dec(raw.get("Quantity"), "Quantity"),
        status=_lookup(STATUSES, status_word, "order Status"), broker_status=status_word, filled_quantity=filled,
        limit_price=Money(price, currency) if type_ in (OrderType.LIMIT, OrderType.STOP_LIMIT) and price else None,
        stop_price=Money(stop, currency) if type_ in (OrderType.STOP, OrderType.STOP_LIMIT) and stop else None,
        average_fill_price=Money(avg, currency) if filled > 0 and avg else None,
        time_in_force=_lookup(TIFS, raw.get("TimeInForce"), "TimeInForce"),
        expires_at=parse_time(raw.get("ExpireDate")), created_at=parse_time(raw.get("CreateDate")),
        updated_at=parse_time(raw.get("TransactionDate") or raw.get("Date")),
        client_order_id=None if client_id in (None, "") else str(client_id),
        notes=raw.get("Description") or None, raw=raw,
    )
