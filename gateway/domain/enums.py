"""Normalised enums of the public contract (SCHEMA.md). Broker words map onto these in each
adapter's ``parsing.py``; the broker's own word is kept beside them (``broker_status``)."""

from __future__ import annotations

from enum import Enum

__all__ = [
    "AccountKind",
    "AllocationMethod",
    "AssetClass",
    "Broker",
    "ConnectionStatus",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Product",
    "TimeInForce",
    "TERMINAL_STATUSES",
]


class Broker(Enum):
    LEMON = "lemon"
    IBKR = "ibkr"
    ETNA = "etna"
    ALICEBLUE = "aliceblue"


class ConnectionStatus(Enum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNAUTHENTICATED = "unauthenticated"


class AssetClass(Enum):
    STOCK = "stock"
    ETF = "etf"
    FUND = "fund"
    OPTION = "option"
    FUTURE = "future"
    BOND = "bond"
    WARRANT = "warrant"
    CRYPTO = "crypto"
    CASH = "cash"
    OTHER = "other"


class AccountKind(Enum):
    INDIVIDUAL = "individual"
    ADVISOR_MASTER = "advisor_master"
    ADVISOR_CLIENT = "advisor_client"
    OTHER = "other"


class AllocationMethod(Enum):
    AVAILABLE_EQUITY = "available_equity"
    EQUAL = "equal"
    NET_LIQUIDATION = "net_liquidation"
    CASH_QUANTITY = "cash_quantity"
    PERCENTAGES = "percentages"
    RATIOS = "ratios"
    SHARES = "shares"


class OrderSide(Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> OrderSide:
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderType(Enum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(Enum):
    DAY = "day"
    GTC = "gtc"
    GTD = "gtd"
    IOC = "ioc"
    FOK = "fok"
    OPG = "opg"


class OrderStatus(Enum):
    PENDING_ACTIVATION = "pending_activation"
    PENDING_SUBMIT = "pending_submit"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED}
)


class Product(Enum):
    CASH = "cash"
    MARGIN = "margin"
    INTRADAY = "intraday"
    LONGTERM = "longterm"
    MTF = "mtf"
