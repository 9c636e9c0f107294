"""Query root fields. Lists across connections gather every connection the caller may use
concurrently; a connection that fails adds an ``errors[]`` entry and the others still answer."""

from __future__ import annotations

import asyncio
from typing import Any

import strawberry

from ..brokers.base import Page, WindowQuery
from ..domain import models
from ..domain.errors import GatewayError, OrderNotFound
from ..domain.keys import AccountKey, AllocationGroupKey, ConnectionKey, OrderKey, PositionKey
from ..domain.requests import PositionFilter as DomainPositionFilter
from .account.types import Account
from .allocation_group.types import AllocationGroup
from .common import MaxAge, Node, check_max_age, window
from .connection.types import BrokerConnection
from .context import Info
from .enums import BrokerEnum
from .ids import decode, decode_any
from .order.inputs import OrderFilter
from .order.types import Order, OrderConnection
from .position.inputs import PositionFilter
from .position.types import Position, PositionConnection

__all__ = ["Query", "find_position"]


def _connections(info: Info, broker: BrokerEnum | None = None) -> list[str]:
    ctx = info.context
    return [name for name, adapter in ctx.registry.adapters.items()
            if ctx.principal.can_use(name) and (broker is None or adapter.broker.value == broker.value)]


async def _per_connection(info: Info, loader: Any, broker: BrokerEnum | None = None) -> list[Any]:
    """Every connection's list from ``loader``, concurrently; a failing connection adds an
    ``errors[]`` entry and the others still answer."""
    names = _connections(info, broker)
    results = await asyncio.gather(*(loader.load(n) for n in names), return_exceptions=True)
    out: list[Any] = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, GatewayError):
            info.context.report(result.with_connection(name), info)
        elif isinstance(result, BaseException):
            raise result
        else:
            out.extend(result)
    return out


async def _accounts(info: Info, broker: BrokerEnum | None = None) -> list[models.Account]:
    return await _per_connection(info, info.context.loaders.account_list_by_connection, broker)


async def find_position(info: Info, key: PositionKey) -> models.Position | None:
    """The position with ``key``, read from its account's positions (narrowed by ISIN where the id is one)."""
    account = AccountKey(key.connection, key.account_number)
    page = await info.context.loaders.positions_by_account.load(WindowQuery(account, None, 0, 100_000))
    return next((p for p in page.items if p.key == key), None)


async def _merged(info: Info, loader: Any, flt: Any, first: int | None, after: str | None,
                  sort_key: Any, max_age: float | None = None) -> tuple[Page, int]:
    offset, limit = window(first, after, info.context.max_page_size)
    accounts = await _accounts(info)
    queries = [WindowQuery(a.key, flt, 0, offset + limit, max_age) for a in accounts]
    results = await asyncio.gather(*(loader.load(q) for q in queries), return_exceptions=True)
    items: list[Any] = []
    total = 0
    for q, result in zip(queries, results, strict=True):
        if isinstance(result, GatewayError):
            info.context.report(result.with_connection(q.account.connection), info)
        elif isinstance(result, BaseException):
            raise result
        else:
            items.extend(result.items)
            total += result.total
    items.sort(key=sort_key)
    return Page(items[offset:offset + limit], total), offset


@strawberry.type(description="Read accounts, allocation groups, positions and orders across brokers.")
class Query:
    @strawberry.field(description="Any object by its global id; null when it does not exist or is not the caller's.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        key = decode_any(id, info.context.principal)
        if key is None:
            return None
        try:
            if isinstance(key, ConnectionKey):
                if key.connection not in info.context.registry.adapters:
                    return None
                return BrokerConnection.build(key.connection, info.context.registry.get(key.connection).broker.value)
            if isinstance(key, AccountKey):
                account = await info.context.loaders.account(key)
                return Account.from_domain(account) if account else None
            if isinstance(key, AllocationGroupKey):
                group = await info.context.loaders.allocation_group(key)
                return AllocationGroup.from_domain(group) if group else None
            if isinstance(key, OrderKey):
                return Order.from_domain(await info.context.loaders.order_by_key.load((key, None)))
            if isinstance(key, PositionKey):
                position = await find_position(info, key)
                return Position.from_domain(position) if position else None
        except OrderNotFound:
            return None
        return None

    @strawberry.field(description="The broker connections the caller may use.")
    def connections(self, info: Info) -> list[BrokerConnection]:
        return [BrokerConnection.build(n, info.context.registry.get(n).broker.value) for n in _connections(info)]

    @strawberry.field(description="Every account the caller may see, optionally of one broker.")
    async def accounts(self, info: Info, broker: BrokerEnum | None = None) -> list[Account]:
        return [Account.from_domain(a) for a in await _accounts(info, broker)]

    @strawberry.field(description="One account by id; null when it does not exist or is not the caller's.")
    async def account(self, info: Info, id: strawberry.ID) -> Account | None:
        key = decode(id, AccountKey, info.context.principal)
        if key is None or key.connection not in info.context.registry.adapters:
            return None
        found = await info.context.loaders.account(key)
        return Account.from_domain(found) if found else None

    @strawberry.field(description="Every allocation group the caller may see, optionally of one broker.")
    async def allocation_groups(self, info: Info, broker: BrokerEnum | None = None) -> list[AllocationGroup]:
        groups = await _per_connection(info, info.context.loaders.allocation_groups_by_connection, broker)
        return [AllocationGroup.from_domain(g) for g in groups]

    @strawberry.field(description="One order by id; null when it does not exist or is not the caller's.")
    async def order(self, info: Info, id: strawberry.ID, max_age: MaxAge = None) -> Order | None:
        age = check_max_age(max_age)
        key = decode(id, OrderKey, info.context.principal)
        if key is None or key.connection not in info.context.registry.adapters:
            return None
        try:
            return Order.from_domain(await info.context.loaders.order_by_key.load((key, age)))
        except OrderNotFound:
            return None

    @strawberry.field(description="Orders of every account the caller may see, newest first.")
    async def orders(self, info: Info, first: int | None = None, after: str | None = None,
                     filter: OrderFilter | None = None, max_age: MaxAge = None) -> OrderConnection:
        from datetime import UTC, datetime

        oldest = datetime.min.replace(tzinfo=UTC)
        page, offset = await _merged(info, info.context.loaders.orders_by_account,
                                     filter.to_domain() if filter else None, first, after,
                                     lambda o: (-(o.created_at or oldest).timestamp(), o.key.broker_order_id),
                                     check_max_age(max_age))
        return OrderConnection.build(page, offset)

    @strawberry.field(description="Positions of every account the caller may see, account by account (by "
                                  "connection and account number), each account's in its broker's order.")
    async def positions(self, info: Info, first: int | None = None, after: str | None = None,
                        filter: PositionFilter | None = None, max_age: MaxAge = None) -> PositionConnection:
        flt: DomainPositionFilter | None = filter.to_domain() if filter else None
        # account by account, each in its broker's own order (the sort is stable): the windows read
        # from each broker then line up with the merged list's pages
        page, offset = await _merged(info, info.context.loaders.positions_by_account, flt, first, after,
                                     lambda p: (p.key.connection, p.key.account_number), check_max_age(max_age))
        return PositionConnection.build(page, offset)
