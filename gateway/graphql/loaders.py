"""Per-operation DataLoaders (aiodataloader), never shared between operations or principals. Each
batches by connection: one adapter call per connection (or per account where the broker has no batch
read), whatever number of fields or items the query selects. What outlives the operation is the
connections' snapshots (``gateway.brokers.snapshots``): keys carry the ``maxAge`` the field asked for,
and the adapter is called with it (``budget.accepting``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiodataloader import DataLoader

from ..brokers import budget
from ..brokers.base import Page, WindowQuery
from ..domain.errors import GatewayError, OrderNotFound
from ..domain.keys import AccountKey, AllocationGroupKey, OrderKey
from ..domain.models import Account, AllocationGroup, Order
from ..registry import Registry

__all__ = ["GroupWindow", "Loaders"]


def _group(keys: Sequence[Any]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        conn = key if isinstance(key, str) else getattr(key, "connection", None) or key.account.connection
        groups.setdefault(conn, []).append(i)
    return groups


class _Loader(DataLoader):  # type: ignore[misc]
    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry


class AccountsByConnectionLoader(_Loader):
    """connection name → ``list[Account]`` (``fetch_accounts``)."""

    async def batch_load_fn(self, keys: Sequence[str]) -> list[list[Account] | GatewayError]:
        results = await asyncio.gather(*(self.registry.get(k).read_accounts() for k in keys), return_exceptions=True)
        return [_settle(r, k) for r, k in zip(results, keys, strict=True)]


class AllocationGroupsByConnectionLoader(_Loader):
    """connection name → ``list[AllocationGroup]`` (``fetch_allocation_groups``)."""

    async def batch_load_fn(self, keys: Sequence[str]) -> list[list[AllocationGroup] | GatewayError]:
        results = await asyncio.gather(*(self.registry.get(k).fetch_allocation_groups() for k in keys),
                                       return_exceptions=True)
        return [_settle(r, k) for r, k in zip(results, keys, strict=True)]


class _PagesLoader(_Loader):
    method = ""

    async def batch_load_fn(self, keys: Sequence[WindowQuery]) -> list[Page | GatewayError]:
        out: list[Page | GatewayError] = [OrderNotFound("not loaded")] * len(keys)
        groups = _group(keys)

        async def one(conn: str, idx: list[int], max_age: float | None) -> None:
            adapter = self.registry.get(conn)
            try:
                with budget.accepting(max_age):
                    pages = await getattr(adapter, self.method)([keys[i] for i in idx])
            except GatewayError as exc:
                pages = [exc.with_connection(conn)] * len(idx)
            for i, page in zip(idx, pages, strict=True):
                out[i] = page.with_connection(conn) if isinstance(page, GatewayError) else page

        calls = []
        for conn, idx in groups.items():
            by_age: dict[float | None, list[int]] = {}
            for i in idx:
                by_age.setdefault(keys[i].max_age, []).append(i)
            calls.extend(one(conn, same, age) for age, same in by_age.items())
        await asyncio.gather(*calls)
        return out


class PositionsByAccountLoader(_PagesLoader):
    """``WindowQuery`` (account, filter, window) → ``Page`` of positions."""

    method = "fetch_positions_pages"


class OrdersByAccountLoader(_PagesLoader):
    """``WindowQuery`` (account, filter, window) → ``Page`` of orders."""

    method = "fetch_orders_pages"


class OrdersByGroupLoader(_Loader):
    """``GroupWindow`` (allocation group, filter, window, maxAge) → ``Page`` of the group's orders
    (``fetch_group_orders``: IBKR switches the session to the group)."""

    async def batch_load_fn(self, keys: Sequence[GroupWindow]) -> list[Page | GatewayError]:
        async def one(k: GroupWindow) -> Page:
            adapter = self.registry.get(k.group.connection)
            with budget.accepting(k.max_age):
                orders = await adapter.fetch_group_orders(k.group, k.filter)
            return Page(orders[k.offset:k.offset + k.limit], len(orders))

        results = await asyncio.gather(*(one(k) for k in keys), return_exceptions=True)
        return [_settle(r, k.group.connection) for r, k in zip(results, keys, strict=True)]


class OrderByKeyLoader(_Loader):
    """``(OrderKey, maxAge)`` → ``Order`` (``fetch_order``)."""

    async def batch_load_fn(self, keys: Sequence[tuple[OrderKey, float | None]]) -> list[Order | GatewayError]:
        async def one(key: OrderKey, max_age: float | None) -> Order:
            with budget.accepting(max_age):
                return await self.registry.get(key.connection).fetch_order(key)

        results = await asyncio.gather(*(one(k, age) for k, age in keys), return_exceptions=True)
        return [_settle(r, k.connection) for r, (k, _) in zip(results, keys, strict=True)]


@dataclass(frozen=True, slots=True)
class GroupWindow:
    """One allocation group's order list, filtered, from ``offset`` for ``limit`` items."""

    group: AllocationGroupKey
    filter: Any = None
    offset: int = 0
    limit: int = 100
    max_age: float | None = None


def _settle(result: Any, connection: str) -> Any:
    if isinstance(result, GatewayError):
        return result.with_connection(connection)
    if isinstance(result, BaseException):
        raise result
    return result


@dataclass(slots=True)
class Loaders:
    """Every loader of one request."""

    accounts_by_connection: AccountsByConnectionLoader
    allocation_groups_by_connection: AllocationGroupsByConnectionLoader
    positions_by_account: PositionsByAccountLoader
    orders_by_account: OrdersByAccountLoader
    orders_by_group: OrdersByGroupLoader
    order_by_key: OrderByKeyLoader

    @classmethod
    def build(cls, registry: Registry) -> Loaders:
        return cls(
            AccountsByConnectionLoader(registry),
            AllocationGroupsByConnectionLoader(registry),
            PositionsByAccountLoader(registry),
            OrdersByAccountLoader(registry),
            OrdersByGroupLoader(registry),
            OrderByKeyLoader(registry),
        )

    async def account(self, key: AccountKey) -> Account | None:
        """The account for ``key``, from its connection's account list (``None`` if absent)."""
        accounts = await self.accounts_by_connection.load(key.connection)
        return next((a for a in accounts if a.key == key), None)

    async def allocation_group(self, key: AllocationGroupKey) -> AllocationGroup | None:
        groups = await self.allocation_groups_by_connection.load(key.connection)
        return next((g for g in groups if g.key == key), None)
