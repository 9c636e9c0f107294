"""Position and its Relay connection."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from ...brokers.base import Page, WindowQuery
from ...domain import models
from ..common import Instrument, Money, Node, PageInfo, load_page, money, price, relay_parts
from ..context import Info
from ..enums import ProductEnum
from ..ids import encode
from ..scalars import Decimal

if TYPE_CHECKING:
    from ..account.types import Account

__all__ = ["Position", "PositionConnection", "PositionEdge"]


@strawberry.type(description="A holding of one instrument in one account.")
class Position(Node):
    instrument: Instrument = strawberry.field(description="The instrument held.")
    quantity: Decimal = strawberry.field(description="Signed quantity: negative is short.")
    average_price: Money | None = strawberry.field(description="Average entry price per unit.")
    cost_basis: Money | None = strawberry.field(description="Average price × quantity.")
    market_price: Money | None = strawberry.field(description="Last price per unit as the broker reports it.")
    market_value: Money | None = strawberry.field(description="Market price × quantity.")
    unrealized_pnl: Money | None = strawberry.field(description="Market value − cost basis.")
    realized_pnl: Money | None = strawberry.field(description="Realised profit or loss, where reported.")
    product: ProductEnum | None = strawberry.field(
        description="Alice Blue INTRADAY / LONGTERM / MTF; null where the broker has none.")
    as_of: datetime = strawberry.field(description="When the gateway read it from the broker (UTC).")
    settlement: list[SettlementQuantity] = strawberry.field(
        description="Settlement quantities where the broker reports them (Alice Blue t1, collateral, DP).")
    _domain: strawberry.Private[models.Position]

    @classmethod
    def from_domain(cls, p: models.Position) -> Position:
        return cls(id=strawberry.ID(encode(p.key)), instrument=Instrument.from_domain(p.instrument),
                   quantity=p.quantity, average_price=price(p.average_price), cost_basis=money(p.cost_basis),
                   market_price=price(p.market_price), market_value=money(p.market_value),
                   unrealized_pnl=money(p.unrealized_pnl), realized_pnl=money(p.realized_pnl),
                   product=ProductEnum(p.product.value) if p.product else None, as_of=p.as_of,
                   settlement=[SettlementQuantity(kind=k, quantity=q) for k, q in sorted(p.extra.items())],
                   _domain=p)

    @strawberry.field(description="The account holding the position.")
    async def account(self, info: Info) -> Annotated[Account, strawberry.lazy("..account.types")]:
        from ..account.types import Account

        key = self._domain.account_key
        return Account.from_key(key, info.context.registry.get(key.connection).broker)


@strawberry.type(description="One settlement quantity of a position.")
class SettlementQuantity:
    kind: str = strawberry.field(description="The broker's name for it (t1Quantity, collateralQuantity, ...).")
    quantity: Decimal = strawberry.field(description="The quantity.")


@strawberry.type(description="An edge of a position list.")
class PositionEdge:
    cursor: str = strawberry.field(description="Opaque cursor of this position.")
    node: Position = strawberry.field(description="The position.")


@strawberry.type(description="A page of positions.")
class PositionConnection:
    edges: list[PositionEdge] = strawberry.field(description="The positions of this page with their cursors.")
    nodes: list[Position] = strawberry.field(description="The positions of this page.")
    page_info: PageInfo = strawberry.field(description="Paging information.")
    total_count: int = strawberry.field(description="Number of positions matching the filter, over all pages.")

    @classmethod
    def build(cls, page: Page, offset: int) -> PositionConnection:
        return cls(**relay_parts(page, offset, Position.from_domain, PositionEdge))

    @classmethod
    async def load(cls, info: Info, query: WindowQuery) -> PositionConnection:
        return cls.build(await load_page(info, info.context.loaders.positions_by_account, query), query.offset)
