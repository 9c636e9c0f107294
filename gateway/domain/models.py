"""Framework-free domain objects. Money and quantities are ``Decimal`` from the parse boundary on;
times are timezone-aware UTC ``datetime``. Every object keeps the broker payload it came from in
``raw`` (ccxt's ``info``) for debugging; ``raw`` is never exposed through GraphQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from .enums import (
    AccountKind,
    AllocationMethod,
    AssetClass,
    Broker,
    OrderSide,
    OrderStatus,
    OrderType,
    Product,
    TimeInForce,
)
from .keys import AccountKey, AllocationGroupKey, OrderKey, PositionKey

__all__ = ["Account", "AllocationGroup", "AllocationMember", "Instrument", "Money", "Order", "Position"]


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in an ISO 4217 currency; ``amount`` is a ``Decimal`` in currency units (EUR, not
    cents)."""

    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable instrument as one broker lists it.

    ``exchange`` is a MIC where known (XMUN, XNAS), else the broker's venue code (NSE, BSE);
    ``broker_instrument_id`` is the IBKR conid, ETNA SecurityId, Alice Blue instrumentId or lemon ISIN.
    """

    symbol: str | None = None
    isin: str | None = None
    name: str | None = None
    exchange: str | None = None
    currency: str | None = None
    asset_class: AssetClass | None = None
    broker_instrument_id: str | None = None


@dataclass(slots=True)
class Account:
    """A broker account under one connection."""

    key: AccountKey
    broker: Broker
    display_name: str | None = None
    base_currency: str | None = None
    kind: AccountKind = AccountKind.INDIVIDUAL
    allocation_group_names: tuple[str, ...] = ()
    cash: Money | None = None
    as_of: datetime | None = None  # when the balances (cash) were read from the broker
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def account_number(self) -> str:
        return self.key.account_number


@dataclass(frozen=True, slots=True)
class AllocationMember:
    """One account of an allocation group; ``amount`` is the method's figure (percent, ratio,
    shares), ``None`` for methods without one."""

    account: AccountKey
    amount: Decimal | None = None


@dataclass(slots=True)
class AllocationGroup:
    """An IBKR Financial Advisor allocation group: orders placed for it are split over members."""

    key: AllocationGroupKey
    method: AllocationMethod
    members: tuple[AllocationMember, ...] = ()
    master_account: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(slots=True)
class Order:
    """An order as the broker reports it, normalised; ``broker_status`` keeps the broker's word.

    ``created_at_first_seen`` marks a ``created_at`` that is when the gateway first saw the order
    (IBKR orders carry no creation time), not the broker's own creation time.
    """

    key: OrderKey
    instrument: Instrument
    side: OrderSide
    type: OrderType
    quantity: Decimal
    status: OrderStatus
    broker_status: str
    filled_quantity: Decimal = Decimal(0)
    limit_price: Money | None = None
    stop_price: Money | None = None
    average_fill_price: Money | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    client_order_id: str | None = None
    created_at_first_seen: bool = False
    allocation_group: AllocationGroupKey | None = None
    account_known: bool = True
    product: Product | None = None
    notes: str | None = None
    as_of: datetime | None = None  # when the gateway read (or, for its own writes, received) this state
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def remaining_quantity(self) -> Decimal:
        if self.status.is_terminal:
            return Decimal(0)
        return max(self.quantity - self.filled_quantity, Decimal(0))

    @property
    def account_key(self) -> AccountKey:
        return AccountKey(self.key.connection, self.key.account_number)


@dataclass(slots=True)
class Position:
    """A holding in one account; ``quantity`` is signed (negative is short)."""

    key: PositionKey
    instrument: Instrument
    quantity: Decimal
    as_of: datetime
    average_price: Money | None = None
    market_price: Money | None = None
    market_value: Money | None = None
    unrealized_pnl: Money | None = None
    realized_pnl: Money | None = None
    product: Product | None = None
    extra: dict[str, Decimal] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def account_key(self) -> AccountKey:
        return AccountKey(self.key.connection, self.key.account_number)

    @property
    def cost_basis(self) -> Money | None:
        if self.average_price is None:
            return None
        return Money(self.average_price.amount * self.quantity, self.average_price.currency)
