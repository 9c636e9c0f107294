"""AllocationGroup: an IBKR Financial Advisor group that splits orders over member accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from ...brokers.base import Page
from ...domain import models
from ...domain.errors import GatewayError
from ...domain.keys import AccountKey, AllocationGroupKey
from ..common import Node, window
from ..context import Info
from ..enums import AllocationMethodEnum
from ..ids import encode
from ..order.inputs import OrderFilter
from ..scalars import Decimal

if TYPE_CHECKING:
    from ..account.types import Account
    from ..connection.types import BrokerConnection
    from ..order.types import OrderConnection

__all__ = ["AllocationGroup", "AllocationMember"]


@strawberry.type(description="A member account of an allocation group.")
class AllocationMember:
    amount: Decimal | None = strawberry.field(
        description="The method's figure for this member (percent, ratio, shares); null where the method has none.")
    _account: strawberry.Private[AccountKey]

    @strawberry.field(description="The member account.")
    def account(self, info: Info) -> Annotated[Account, strawberry.lazy("..account.types")]:
        from ..account.types import Account

        broker = info.context.registry.get(self._account.connection).broker
        return Account.from_key(self._account, broker)


@strawberry.type(description="An allocation group (IBKR Financial Advisor): orders for it are split over members.")
class AllocationGroup(Node):
    name: str = strawberry.field(description="The group's name, as the broker knows it.")
    method: AllocationMethodEnum = strawberry.field(description="How orders are split over the members.")
    members: list[AllocationMember] = strawberry.field(description="The member accounts.")
    _key: strawberry.Private[AllocationGroupKey]
    _master: strawberry.Private[str | None]

    @classmethod
    def from_domain(cls, g: models.AllocationGroup) -> AllocationGroup:
        return cls(id=strawberry.ID(encode(g.key)), name=g.key.name, method=AllocationMethodEnum(g.method.value),
                   members=[AllocationMember(amount=m.amount, _account=m.account) for m in g.members],
                   _key=g.key, _master=g.master_account)

    @strawberry.field(description="The connection the group belongs to.")
    def connection(self, info: Info) -> Annotated[BrokerConnection, strawberry.lazy("..connection.types")]:
        from ..connection.types import BrokerConnection

        return BrokerConnection.build(self._key.connection, info.context.registry.get(self._key.connection).broker.value)

    @strawberry.field(description="Orders placed for this group as a whole (read under the master account).")
    async def orders(self, info: Info, first: int | None = None, after: str | None = None,
                     filter: OrderFilter | None = None) -> Annotated[OrderConnection, strawberry.lazy("..order.types")]:
        from ...brokers.base import WindowQuery
        from ..order.types import OrderConnection

        offset, limit = window(first, after, info.context.max_page_size)
        if self._master is None:
            return OrderConnection.build(Page([], 0), 0)
        flt = filter.to_domain() if filter else None
        master = AccountKey(self._key.connection, self._master)
        try:
            page = await info.context.loaders.orders_by_account.load(WindowQuery(master, flt, 0, 10_000))
        except GatewayError as exc:
            info.context.report(exc.with_connection(self._key.connection), info)
            return OrderConnection.build(Page([], 0), 0)
        mine = [o for o in page.items if o.allocation_group == self._key]
        return OrderConnection.build(Page(mine[offset:offset + limit], len(mine)), offset)


