"""GraphQL enums with a description on every value. Each value's Python value equals the domain
enum's value, so ``GqlEnum(domain.value)`` converts and ``domain_enum(gql.value)`` converts back."""

from __future__ import annotations

from enum import Enum

import strawberry

__all__ = ["AccountKindEnum", "AllocationMethodEnum", "AssetClassEnum", "BrokerEnum", "ConnectionStatusEnum",
           "ErrorCodeEnum", "OrderSideEnum", "OrderStatusEnum", "OrderTypeEnum", "ProductEnum", "TimeInForceEnum"]

v = strawberry.enum_value


@strawberry.enum(name="Broker", description="The brokers the gateway speaks to.")
class BrokerEnum(Enum):
    LEMON = v("lemon", description="lemon.markets Trading API v1.")
    IBKR = v("ibkr", description="Interactive Brokers Client Portal Web API.")
    ETNA = v("etna", description="ETNA Trader Web API.")
    ALICEBLUE = v("aliceblue", description="Alice Blue ANT API v2.")


@strawberry.enum(name="ConnectionStatus", description="Health of a broker connection as last seen by the gateway.")
class ConnectionStatusEnum(Enum):
    UP = v("up", description="The broker answers.")
    DEGRADED = v("degraded", description="The broker answers some calls and fails others.")
    DOWN = v("down", description="The broker cannot be reached or fails every call.")
    UNAUTHENTICATED = v("unauthenticated", description="The broker session is logged out or the credentials are refused.")


@strawberry.enum(name="AssetClass", description="Kind of instrument.")
class AssetClassEnum(Enum):
    STOCK = v("stock", description="Common or preferred stock.")
    ETF = v("etf", description="Exchange-traded fund.")
    FUND = v("fund", description="Mutual fund.")
    OPTION = v("option", description="Option contract.")
    FUTURE = v("future", description="Futures contract.")
    BOND = v("bond", description="Bond or note.")
    WARRANT = v("warrant", description="Warrant or certificate.")
    CRYPTO = v("crypto", description="Crypto asset.")
    CASH = v("cash", description="Cash or FX.")
    OTHER = v("other", description="Anything else.")


@strawberry.enum(name="AccountKind", description="Role of an account.")
class AccountKindEnum(Enum):
    INDIVIDUAL = v("individual", description="An ordinary account.")
    ADVISOR_MASTER = v("advisor_master", description="A Financial Advisor's master account.")
    ADVISOR_CLIENT = v("advisor_client", description="A client sub-account managed by an advisor.")
    OTHER = v("other", description="Any other kind.")


@strawberry.enum(name="AllocationMethod", description="How an allocation group splits an order over its members.")
class AllocationMethodEnum(Enum):
    AVAILABLE_EQUITY = v("available_equity", description="By available equity (IBKR 'A').")
    EQUAL = v("equal", description="Equal quantities (IBKR 'E').")
    NET_LIQUIDATION = v("net_liquidation", description="By net liquidation value (IBKR 'N').")
    CASH_QUANTITY = v("cash_quantity", description="By cash amount (IBKR 'C').")
    PERCENTAGES = v("percentages", description="By the members' percentages (IBKR 'P').")
    RATIOS = v("ratios", description="By the members' ratios (IBKR 'R').")
    SHARES = v("shares", description="Fixed share quantities per member (IBKR 'S').")


@strawberry.enum(name="OrderSide", description="Buy or sell.")
class OrderSideEnum(Enum):
    BUY = v("buy", description="Buy.")
    SELL = v("sell", description="Sell.")


@strawberry.enum(name="OrderType", description="Order type.")
class OrderTypeEnum(Enum):
    MARKET = v("market", description="Execute at the market price.")
    LIMIT = v("limit", description="Execute at the limit price or better.")
    STOP = v("stop", description="Becomes a market order when the stop price is reached.")
    STOP_LIMIT = v("stop_limit", description="Becomes a limit order when the stop price is reached.")


@strawberry.enum(name="TimeInForce", description="How long an order stays working.")
class TimeInForceEnum(Enum):
    DAY = v("day", description="Until the end of the trading day.")
    GTC = v("gtc", description="Good till cancelled (or the broker's longest expiry).")
    GTD = v("gtd", description="Good till the date in expiresAt.")
    IOC = v("ioc", description="Immediate or cancel.")
    FOK = v("fok", description="Fill or kill.")
    OPG = v("opg", description="At the opening auction.")


@strawberry.enum(name="OrderStatus", description="Normalised order status; brokerStatus keeps the broker's word.")
class OrderStatusEnum(Enum):
    PENDING_ACTIVATION = v("pending_activation", description="Placed but not yet released to the venue (lemon 'inactive').")
    PENDING_SUBMIT = v("pending_submit", description="Released, not yet acknowledged by the venue.")
    SUBMITTED = v("submitted", description="Working at the venue.")
    PARTIALLY_FILLED = v("partially_filled", description="Partly executed and still working.")
    FILLED = v("filled", description="Completely executed.")
    PENDING_CANCEL = v("pending_cancel", description="Cancel requested, not yet confirmed.")
    CANCELED = v("canceled", description="Cancelled.")
    EXPIRED = v("expired", description="Expired unexecuted (or partly executed).")
    REJECTED = v("rejected", description="Rejected by the broker or venue.")


@strawberry.enum(name="Product", description="Broker product of a position or order.")
class ProductEnum(Enum):
    CASH = v("cash", description="Cash account holding.")
    MARGIN = v("margin", description="Margin account holding.")
    INTRADAY = v("intraday", description="Intraday (Alice Blue MIS), squared off the same day.")
    LONGTERM = v("longterm", description="Delivery (Alice Blue CNC / NRML).")
    MTF = v("mtf", description="Margin trading facility (Alice Blue MTF).")


@strawberry.enum(name="ErrorCode", description="Machine-readable error code of a UserError.")
class ErrorCodeEnum(Enum):
    INVALID_INPUT = v("INVALID_INPUT", description="The input is invalid; nothing was sent to the broker.")
    NOT_FOUND = v("NOT_FOUND", description="No such object, or not visible to the caller.")
    NOT_SUPPORTED = v("NOT_SUPPORTED", description="The broker has no such operation.")
    REJECTED = v("REJECTED", description="The broker rejected the request.")
    INSUFFICIENT_FUNDS = v("INSUFFICIENT_FUNDS", description="Not enough cash or holdings.")
    IDEMPOTENCY_CONFLICT = v("IDEMPOTENCY_CONFLICT", description="The idempotency key was used with another input.")
    OUTCOME_UNKNOWN = v("OUTCOME_UNKNOWN",
                        description="The order's outcome could not be established; look it up by client order id.")
    RATE_LIMITED = v("RATE_LIMITED", description="The broker's rate limit was hit.")
    BROKER_UNAVAILABLE = v("BROKER_UNAVAILABLE", description="The broker could not be reached or failed.")
    BROKER_BUSY = v("BROKER_BUSY", description="The broker session (its pacing, queue or critical section) could not "
                                              "take the call before the deadline; nothing was sent. Retry after "
                                              "`retryAfterSeconds`.")
    UNAUTHENTICATED = v("UNAUTHENTICATED", description="The broker session is not authenticated.")
    FORBIDDEN = v("FORBIDDEN", description="The operation is not allowed for the caller.")
