"""Account: one broker account, with its positions and orders as Relay connections."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from ...brokers.base import WindowQuery
from ...domain import models
from ...domain.enums import Broker
from ...domain.errors import GatewayError
from ...domain.keys import AccountKey
from ..common import MaxAge, Money, Node, check_max_age, money, selects, window
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
    _key: strawberry.Private[AccountKey]
    _loaded: strawberry.Private[models.Account | None]
    _balances: strawberry.Private[models.Account | None] = None

    @classmethod
    def from_domain(cls, a: models.Account, balances: bool = False) -> Account:
        """``a`` from the account list (``balances`` false: ``cash`` and ``asOf`` read the balances
        when selected) or read with its balances."""
        return cls(id=strawberry.ID(encode(a.key)), broker=BrokerEnum(a.broker.value), account_number=a.account_number,
                   _key=a.key, _loaded=a, _balances=a if balances else None)

    @classmethod
    def from_key(cls, key: AccountKey, broker: Broker) -> Account:
        """An account known by its key only: id, accountNumber and broker cost nothing; the other
        fields read the connection's accounts (once per request) when asked for."""
        return cls(id=strawberry.ID(encode(key)), broker=BrokerEnum(broker.value), account_number=key.account_number,
                   _key=key, _loaded=None)

    async def _account(self, info: Info) -> models.Account | None:
        if self._loaded is None:
            try:
                self._loaded = await info.context.loaders.account(self._key)
            except GatewayError as exc:
                info.context.report(exc.with_connection(self._key.connection), info)
                return None
        return self._loaded

    async def _with_balances(self, info: Info) -> models.Account | None:
        """The account as read with its balances (only for the fields that need them: a query that
        selects no balance makes no balance request)."""
        if self._balances is None and info.context.registry.get(self._key.connection).balances_in_list:
            return await self._account(info)  # one request answers both
        if self._balances is None:
            try:
                accounts = await info.context.loaders.accounts_by_connection.load(self._key.connection)
            except GatewayError as exc:
                info.context.report(exc.with_connection(self._key.connection), info)
                return None
            self._balances = next((a for a in accounts if a.key == self._key), None)
        return self._balances

    @strawberry.field(description="A human-readable name (owner or alias).")
    async def display_name(self, info: Info) -> str | None:
        account = await self._account(info)
        return account.display_name if account else None

    @strawberry.field(description="Base currency (ISO 4217).")
    async def base_currency(self, info: Info) -> str | None:
        account = await self._account(info)
        return account.base_currency if account else None

    @strawberry.field(description="Individual, advisor master or advisor client.")
    async def kind(self, info: Info) -> AccountKindEnum:
        account = await self._account(info)
        return AccountKindEnum(account.kind.value if account else "other")

    @strawberry.field(description="Cash available to invest, where the broker reports it.")
    async def cash(self, info: Info) -> Money | None:
        account = await self._with_balances(info)
        return money(account.cash) if account else None

    @strawberry.field(description="When the account's balances (`cash`) were read from the broker (UTC); they may "
                                  "come from the connection's snapshot, as old as its `max_age.balances` setting.")
    async def as_of(self, info: Info) -> datetime | None:
        account = await self._with_balances(info)
        return account.as_of if account else None

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
        names = (await self._account(info) or models.Account(key=self._key, broker=Broker.LEMON)).allocation_group_names
        return [AllocationGroup.from_domain(g) for g in groups
                if any(m.account == self._key for m in g.members) or g.key.name in names]

    @strawberry.field(description="Positions of the account (a Relay connection; `first` at most 100).")
    async def positions(self, info: Info, first: int | None = None, after: str | None = None,
                        filter: PositionFilter | None = None, max_age: MaxAge = None,
                        ) -> Annotated[PositionConnection, strawberry.lazy("..position.types")]:
        from ..position.types import PositionConnection

        offset, limit = window(first, after, info.context.max_page_size)
        query = WindowQuery(self._key, filter.to_domain() if filter else None, offset, limit, check_max_age(max_age),
                            total=selects(info, "totalCount"))  # else only the pages the window covers
        return await PositionConnection.load(info, query)

    @strawberry.field(description="Orders of the account, newest first (a Relay connection; `first` at most 100).")
    async def orders(self, info: Info, first: int | None = None, after: str | None = None,
                     filter: OrderFilter | None = None, max_age: MaxAge = None,
                     ) -> Annotated[OrderConnection, strawberry.lazy("..order.types")]:
        from ..order.types import OrderConnection

        offset, limit = window(first, after, info.context.max_page_size)
        query = WindowQuery(self._key, filter.to_domain() if filter else None, offset, limit, check_max_age(max_age))
        return await OrderConnection.load(info, query)
