"""Order and its Relay connection."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from ...brokers.base import Page, WindowQuery
from ...domain import models
from ..common import Instrument, Money, Node, PageInfo, load_page, price, relay_parts
from ..context import Info
from ..enums import OrderSideEnum, OrderStatusEnum, OrderTypeEnum, ProductEnum, TimeInForceEnum
from ..ids import encode
from ..scalars import Decimal

if TYPE_CHECKING:
    from ..account.types import Account
    from ..allocation_group.types import AllocationGroup

__all__ = ["Order", "OrderConnection", "OrderEdge"]


@strawberry.type(description="An order as the broker reports it, normalised.")
class Order(Node):
    broker_order_id: str = strawberry.field(description="The broker's order id.")
    client_order_id: str | None = strawberry.field(
        description="What the gateway sent as lemon idempotency / IBKR cOID / ETNA ClientId / Alice Blue orderTag.")
    instrument: Instrument = strawberry.field(description="The instrument.")
    side: OrderSideEnum = strawberry.field(description="Buy or sell.")
    type: OrderTypeEnum = strawberry.field(description="Order type.")
    quantity: Decimal = strawberry.field(description="Ordered quantity.")
    filled_quantity: Decimal = strawberry.field(description="Quantity executed so far.")
    remaining_quantity: Decimal = strawberry.field(description="Quantity still working (0 once terminal).")
    limit_price: Money | None = strawberry.field(description="Limit price per unit.")
    stop_price: Money | None = strawberry.field(description="Stop (trigger) price per unit.")
    average_fill_price: Money | None = strawberry.field(description="Average execution price per unit.")
    time_in_force: TimeInForceEnum = strawberry.field(description="Time in force.")
    expires_at: datetime | None = strawberry.field(description="When the order expires, if it does.")
    status: OrderStatusEnum = strawberry.field(description="Normalised status.")
    broker_status: str = strawberry.field(description="The broker's own status word.")
    created_at: datetime | None = strawberry.field(description=(
        "When the order was created, as the broker reports it. IBKR orders carry no creation time: for them "
        "it is the earlier of the gateway's first sight of the order and the order's last execution time, "
        "kept for the order's life in the gateway process, and `createdAtFirstSeen` is true."))
    created_at_first_seen: bool = strawberry.field(description=(
        "True when `createdAt` is the gateway's first sight of the order (an upper bound on the real creation "
        "time) because the broker reports none (IBKR); false when it is the broker's own creation time."))
    updated_at: datetime | None = strawberry.field(description="When the order last changed.")
    product: ProductEnum | None = strawberry.field(
        description="Broker product (Alice Blue INTRADAY / LONGTERM / MTF); null where the broker has none.")
    notes: str | None = strawberry.field(description="Free-text notes sent with the order.")
    as_of: datetime | None = strawberry.field(
        description="When the gateway read this state from the broker (UTC), or received it as the answer to its own "
                    "write; a read may be served from a snapshot as old as its `maxAge`.")
    _domain: strawberry.Private[models.Order]

    @classmethod
    def from_domain(cls, o: models.Order) -> Order:
        return cls(
            id=strawberry.ID(encode(o.key)), broker_order_id=o.key.broker_order_id, client_order_id=o.client_order_id,
            instrument=Instrument.from_domain(o.instrument), side=OrderSideEnum(o.side.value),
            type=OrderTypeEnum(o.type.value), quantity=o.quantity, filled_quantity=o.filled_quantity,
            remaining_quantity=o.remaining_quantity, limit_price=price(o.limit_price), stop_price=price(o.stop_price),
            average_fill_price=price(o.average_fill_price), time_in_force=TimeInForceEnum(o.time_in_force.value),
            expires_at=o.expires_at, status=OrderStatusEnum(o.status.value), broker_status=o.broker_status,
            created_at=o.created_at, created_at_first_seen=o.created_at_first_seen, updated_at=o.updated_at,
            notes=o.notes, product=ProductEnum(o.product.value) if o.product else None, as_of=o.as_of, _domain=o,
        )

    @strawberry.field(description="The account; null for an order placed for an allocation group as a whole.")
    async def account(self, info: Info) -> Annotated[Account, strawberry.lazy("..account.types")] | None:
        from ..account.types import Account

        if not self._domain.account_known:
            return None
        key = self._domain.account_key
        return Account.from_key(key, info.context.registry.get(key.connection).broker)

    @strawberry.field(description="The allocation group the order was placed for, if any.")
    async def allocation_group(self, info: Info
                               ) -> Annotated[AllocationGroup, strawberry.lazy("..allocation_group.types")] | None:
        from ..allocation_group.types import AllocationGroup

        key = self._domain.allocation_group
        if key is None:
            return None
        group = await info.context.loaders.allocation_group(key)
        return AllocationGroup.from_domain(group) if group else None


@strawberry.type(description="An edge of an order list.")
class OrderEdge:
    cursor: str = strawberry.field(description="Opaque cursor of this order.")
    node: Order = strawberry.field(description="The order.")


@strawberry.type(description="A page of orders.")
class OrderConnection:
    edges: list[OrderEdge] = strawberry.field(description="The orders of this page with their cursors.")
    nodes: list[Order] = strawberry.field(description="The orders of this page.")
    page_info: PageInfo = strawberry.field(description="Paging information.")
    total_count: int = strawberry.field(description="Number of orders matching the filter, over all pages.")

    @classmethod
    def build(cls, page: Page, offset: int) -> OrderConnection:
        return cls(**relay_parts(page, offset, Order.from_domain, OrderEdge))

    @classmethod
    async def load(cls, info: Info, query: WindowQuery) -> OrderConnection:
        return cls.build(await load_page(info, info.context.loaders.orders_by_account, query), query.offset)
