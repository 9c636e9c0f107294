"""Finding the order of a write whose answer was lost, in GET ``orders/book``.

* A placement carries ``orderTag`` = the request's ``client_order_id``: the order is the one with
  that tag (:func:`by_tag`).
* ``orders/positions/sqroff`` carries no tag. The adapter reads the book's ``brokerOrderId`` s
  before sending it; after a lost answer the square-off's order is a book entry that is new since
  then, untagged, ``MARKET``, on the same exchange + ``instrumentId``, in the same product, on the
  closing side and for the same quantity (:func:`square_off_candidates`). Exactly one such entry
  answers the request; none or several (another square-off of the same line raced it) leave the
  outcome unknown, and nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...domain.enums import OrderSide, OrderType, Product
from ...domain.errors import BadResponse
from ...domain.models import Order
from .parsing import PRODUCT, enum

__all__ = ["SquareOffSpec", "book_ids", "by_tag", "square_off_candidates"]


@dataclass(frozen=True, slots=True)
class SquareOffSpec:
    """What the square-off asked for, as the order book will show it."""

    exchange: str
    instrument_id: str
    product: Product
    side: OrderSide
    quantity: Decimal


def book_ids(rows: Iterable[Any]) -> frozenset[str]:
    """The ``brokerOrderId`` s of raw ``orders/book`` items (nothing else is parsed)."""
    return frozenset(str(r.get("brokerOrderId")) for r in rows if isinstance(r, dict) and r.get("brokerOrderId"))


def by_tag(orders: Iterable[Order], client_order_id: str) -> Order | None:
    return next((o for o in orders if o.client_order_id == client_order_id), None)


def _product(order: Order) -> Product | None:
    try:
        return enum(PRODUCT, order.raw.get("product"), "product")  # type: ignore[no-any-return]
    except BadResponse:
        return None


def square_off_candidates(orders: Iterable[Order], before: frozenset[str], spec: SquareOffSpec) -> list[Order]:
    """The book entries that may be the square-off's order (see the module docstring)."""
    return [
        o for o in orders
        if o.key.broker_order_id not in before
        and o.client_order_id is None
        and o.type is OrderType.MARKET
        and (o.instrument.exchange or "").upper() == spec.exchange.upper()
        and o.instrument.broker_instrument_id == spec.instrument_id
        and _product(o) is spec.product
        and o.side is spec.side
        and o.quantity == spec.quantity
    ]
