"""Validated requests handed from the GraphQL layer to the adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .enums import OrderSide, OrderStatus, OrderType, Product, TimeInForce
from .keys import AccountKey, AllocationGroupKey

__all__ = ["InstrumentRef", "OrderFilter", "OrderRequest", "OrderUpdate", "PositionFilter", "isin_matches"]


def isin_matches(isin: str, instrument_ids: frozenset[str], instrument: object) -> bool:
    """Whether ``instrument`` is the one ``isin`` names: by its ISIN where it has one, else (a
    broker that reports no ISIN, as IBKR) by its broker instrument id being one the adapter resolved
    ``isin`` to (``instrument_ids``, filled by the adapter before filtering)."""
    from .models import Instrument

    assert isinstance(instrument, Instrument)
    if instrument.isin:
        return instrument.isin.upper() == isin.upper()
    return instrument.broker_instrument_id is not None and instrument.broker_instrument_id in instrument_ids


@dataclass(frozen=True, slots=True)
class InstrumentRef:
    """How the caller names an instrument; the adapter resolves it to its own id."""

    isin: str | None = None
    symbol: str | None = None
    exchange: str | None = None
    broker_instrument_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order, already validated by the gateway (see ``gateway.domain.validation``).

    Exactly one of ``account`` / ``allocation_group`` is set. Prices are ``Decimal`` in the
    instrument's currency. ``client_order_id`` is always set: it is what the adapter sends as the
    broker's client order id so that an unknown outcome can be reconciled.
    """

    instrument: InstrumentRef
    side: OrderSide
    type: OrderType
    quantity: Decimal
    client_order_id: str
    account: AccountKey | None = None
    allocation_group: AllocationGroupKey | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    expires_at: datetime | None = None
    product: Product | None = None
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """Fields to change on a working order; ``None`` means unchanged."""

    quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Order filter; adapters push what their broker supports down and the rest is applied by
    :meth:`matches` locally."""

    statuses: frozenset[OrderStatus] = field(default_factory=frozenset)
    side: OrderSide | None = None
    symbol: str | None = None
    isin: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    instrument_ids: frozenset[str] = field(default_factory=frozenset)

    def matches(self, order: object) -> bool:
        from .models import Order

        assert isinstance(order, Order)
        if self.statuses and order.status not in self.statuses:
            return False
        if self.side is not None and order.side is not self.side:
            return False
        if self.symbol is not None and (order.instrument.symbol or "").upper() != self.symbol.upper():
            return False
        if self.isin is not None and not isin_matches(self.isin, self.instrument_ids, order.instrument):
            return False
        if self.created_after is not None and (order.created_at is None or order.created_at < self.created_after):
            return False
        if self.created_before is not None and (order.created_at is None or order.created_at > self.created_before):
            return False
        return True


@dataclass(frozen=True, slots=True)
class PositionFilter:
    """Position filter, pushed down where the broker supports it, else applied by :meth:`matches`."""

    symbol: str | None = None
    isin: str | None = None
    min_quantity: Decimal | None = None
    max_quantity: Decimal | None = None
    instrument_ids: frozenset[str] = field(default_factory=frozenset)

    def matches(self, position: object) -> bool:
        from .models import Position

        assert isinstance(position, Position)
        if self.symbol is not None and (position.instrument.symbol or "").upper() != self.symbol.upper():
            return False
        if self.isin is not None and not isin_matches(self.isin, self.instrument_ids, position.instrument):
            return False
        if self.min_quantity is not None and position.quantity < self.min_quantity:
            return False
        if self.max_quantity is not None and position.quantity > self.max_quantity:
            return False
        return True
