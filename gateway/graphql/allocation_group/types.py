"""AllocationGroup: an IBKR Financial Advisor group that splits orders over member accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from ...brokers.base import Page
from ...domain import models
from ...domain.errors import GatewayError
from ...domain.keys import AccountKey, AllocationGroupKey
from ..common import MaxAge, Node, check_max_age, window
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

    @strawberry.field(description="Orders placed for this group as a whole, newest first, as IBKR lists them with "
                                  "the session switched to the group (a Relay connection; `first` at most 100).")
    async def orders(self, info: Info, first: int | None = None, after: str | None = None,
                     filter: OrderFilter | None = None, max_age: MaxAge = None,
                     ) -> Annotated[OrderConnection, strawberry.lazy("..order.types")]:
        from ..loaders import GroupWindow
        from ..order.types import OrderConnection

        offset, limit = window(first, after, info.context.max_page_size)
        query = GroupWindow(self._key, filter.to_domain() if filter else None, offset, limit, check_max_age(max_age))
        try:
            page = await info.context.loaders.orders_by_group.load(query)
        except GatewayError as exc:
            info.context.report(exc.with_connection(self._key.connection), info)
            return OrderConnection.build(Page([], 0), 0)
        return OrderConnection.build(page, offset)


