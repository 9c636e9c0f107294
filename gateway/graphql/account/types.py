"""Account: one broker account, with its positions and orders as Relay connections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from ...brokers.base import WindowQuery
from ...domain import models
from ...domain.errors import GatewayError
from ...domain.keys import AccountKey
from ..common import Money, Node, money, window
from ..context import Info
from ..enums import AccountKindEnum, BrokerEnum
from ..ids import encode
from ..order.inputs import OrderFilter
from ..position.inputs import PositionFilter

if TYPE_CHECKING:
    from ..allocation_group.types import AllocationGroup
    from ..connection.types import BrokerConnection
    from ..order.types import OrderConnection
    from ..position.types import PositionConnection

__all__ = ["Account"]


@strawberry.type(description="A broker account.")
class Account(Node):
    broker: BrokerEnum = strawberry.field(description="The account's broker.")
    account_number: str = strawberry.field(description="The broker's own account id.")
    display_name: str | None = strawberry.field(description="A human-readable name (owner or alias).")
    base_currency: str | None = strawberry.field(description="Base currency (ISO 4217).")
    kind: AccountKindEnum = strawberry.field(description="Individual, advisor master or advisor client.")
    cash: Money | None = strawberry.field(description="Cash available to invest, where the broker reports it.")
    _key: strawberry.Private[AccountKey]
    _groups: strawberry.Private[tuple[str, ...]]

    @classmethod
    def from_domain(cls, a: models.Account) -> Account:
        return cls(id=strawberry.ID(encode(a.key)), broker=BrokerEnum(a.broker.value), account_number=a.account_number,
                   display_name=a.display_name, base_currency=a.base_currency, kind=AccountKindEnum(a.kind.value),
                   cash=money(a.cash), _key=a.key, _groups=a.allocation_group_names)

    @strawberry.field(description="The connection the account belongs to.")
    def connection(self, info: Info) -> Annotated[BrokerConnection, strawberry.lazy("..connection.types")]:
        from ..connection.types import BrokerConnection

        adapter = info.context.registry.get(self._key.connection)
        return BrokerConnection.build(self._key.connection, adapter.broker.value)

    @strawberry.field(description="Allocation groups the account is a member of (IBKR Financial Advisor).")
    async def allocation_groups(self, info: Info
                                ) -> list[Annotated[AllocationGroup, strawberry.lazy("..allocation_group.types")]]:
        from ..allocation_group.types import AllocationGroup

        try:
            groups = await info.context.loaders.allocation_groups_by_connection.load(self._key.connection)
        except GatewayError as exc:
            info.context.report(exc.with_connection(self._key.connection), info)
            return []
        return [AllocationGroup.from_domain(g) for g in groups
                if any(m.account == self._key for m in g.members) or g.key.name in self._groups]

    @strawberry.field(description="Positions of the account (a Relay connection; `first` at most 100).")
    async def positions(self, info: Info, first: int | None = None, after: str | None = None,
                        filter: PositionFilter | None = None
                        ) -> Annotated[PositionConnection, strawberry.lazy("..position.types")]:
        from ..position.types import PositionConnection

        offset, limit = window(first, after, info.context.max_page_size)
        query = WindowQuery(self._key, filter.to_domain() if filter else None, offset, limit)
        return await PositionConnection.load(info, query)

    @strawberry.field(description="Orders of the account, newest first (a Relay connection; `first` at most 100).")
    async def orders(self, info: Info, first: int | None = None, after: str | None = None,
                     filter: OrderFilter | None = None) -> Annotated[OrderConnection, strawberry.lazy("..order.types")]:
        from ..order.types import OrderConnection

        offset, limit = window(first, after, info.context.max_page_size)
        query = WindowQuery(self._key, filter.to_domain() if filter else None, offset, limit)
        return await OrderConnection.load(info, query)
