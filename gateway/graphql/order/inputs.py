"""Order filter input."""

from __future__ import annotations

from datetime import datetime

import strawberry

from ...domain.enums import OrderSide, OrderStatus
from ...domain.requests import OrderFilter as DomainOrderFilter
from ..enums import OrderSideEnum, OrderStatusEnum

__all__ = ["OrderFilter"]


@strawberry.input(description="Narrows an order list; conditions are joined by AND.")
class OrderFilter:
    status: list[OrderStatusEnum] | None = strawberry.field(default=None, description="Any of these statuses.")
    side: OrderSideEnum | None = strawberry.field(default=None, description="Buy or sell.")
    symbol: str | None = strawberry.field(default=None, description="Trading symbol, case-insensitive.")
    isin: str | None = strawberry.field(default=None, description="ISIN.")
    created_after: datetime | None = strawberry.field(default=None, description="Created at or after this time.")
    created_before: datetime | None = strawberry.field(default=None, description="Created at or before this time.")

    def to_domain(self) -> DomainOrderFilter:
        return DomainOrderFilter(
            statuses=frozenset(OrderStatus(s.value) for s in self.status or ()),
            side=OrderSide(self.side.value) if self.side else None,
            symbol=self.symbol, isin=self.isin.upper() if self.isin else None,
            created_after=self.created_after, created_before=self.created_before,
        )
