"""``createdAt`` for IBKR orders, which carry no creation time.

IBKR's live orders (``GET iserver/account/orders``, ``sor``) have ``lastExecutionTime`` /
``lastExecutionTime_r`` (the last execution, or the last status change of an order that has none)
and nothing that means "created". So an order's creation time is taken, once, when this gateway
process first sees the order: the earlier of that moment and the order's own last execution time
(the order existed by then), and it is kept for every later read, so the value never moves.
Such a time is marked ``created_at_first_seen`` (GraphQL ``Order.createdAtFirstSeen``): it is an
upper bound on the real creation time, exact only for orders placed through this gateway process.

The registry is per process and bounded (least recently seen orders are forgotten first); after a
restart, or on another replica, a working order gets a new, later first-sight time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime

from ...domain.keys import OrderKey
from ...domain.models import Order

__all__ = ["FirstSeen", "REGISTRY", "stamp"]


class FirstSeen:
    """``OrderKey`` → the creation time given to that order, for at most ``capacity`` orders."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[OrderKey, datetime] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def created_at(self, order: Order, now: datetime | None = None) -> datetime:
        """The creation time of ``order``: remembered from its first sight, else fixed now."""
        key = order.key
        known = self._seen.get(key)
        if known is None:
            known = now or datetime.now(UTC)
            if order.updated_at is not None and order.updated_at < known:
                known = order.updated_at
            self._seen[key] = known
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(key)
        return known

    def stamp(self, orders: Iterable[Order], now: datetime | None = None) -> list[Order]:
        """Give every order without a ``created_at`` its first-sight time (marked as such)."""
        out = list(orders)
        moment = now or datetime.now(UTC)
        for order in out:
            if order.created_at is None:
                order.created_at = self.created_at(order, moment)
                order.created_at_first_seen = True
        return out


#: the process-wide registry the adapter stamps parsed orders with
REGISTRY = FirstSeen()


def stamp(orders: Iterable[Order]) -> list[Order]:
    """:meth:`FirstSeen.stamp` on the process-wide :data:`REGISTRY`."""
    return REGISTRY.stamp(orders)
