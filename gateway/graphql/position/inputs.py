"""Position filter input."""

from __future__ import annotations

import strawberry

from ...domain.requests import PositionFilter as DomainPositionFilter
from ..scalars import Decimal

__all__ = ["PositionFilter"]


@strawberry.input(description="Narrows a position list; conditions are joined by AND.")
class PositionFilter:
    symbol: str | None = strawberry.field(default=None, description="Trading symbol, case-insensitive.")
    isin: str | None = strawberry.field(default=None, description="ISIN.")
    min_quantity: Decimal | None = strawberry.field(default=None, description="Smallest signed quantity.")
    max_quantity: Decimal | None = strawberry.field(default=None, description="Largest signed quantity.")

    def to_domain(self) -> DomainPositionFilter:
        return DomainPositionFilter(symbol=self.symbol, isin=self.isin.upper() if self.isin else None,
                                    min_quantity=self.min_quantity, max_quantity=self.max_quantity)
