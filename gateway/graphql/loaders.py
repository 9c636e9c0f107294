"""Per-request DataLoaders (aiodataloader), built in ``get_context`` and never shared between
requests or principals. Each batches by connection: one adapter call per connection (or per
account where the broker has no batch read), whatever number of fields or items the query selects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiodataloader import DataLoader

from ..brokers.base import Page, WindowQuery
from ..domain.errors import GatewayError, OrderNotFound
from ..domain.keys import AccountKey, AllocationGroupKey, OrderKey
from ..domain.models import Account, AllocationGroup, Order
from ..registry import Registry

__all__ = ["Loaders"]


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
        results = await asyncio.gather(*(self.registry.get(k).fetch_accounts() for k in keys), return_exceptions=True)
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

        async def one(conn: str, idx: list[int]) -> None:
            adapter = self.registry.get(conn)
            try:
                pages = await getattr(adapter, self.method)([keys[i] for i in idx])
            except GatewayError as exc:
                pages = [exc.with_connection(conn)] * len(idx)
            for i, page in zip(idx, pages, strict=True):
                out[i] = page.with_connection(conn) if isinstance(page, GatewayError) else page

        await asyncio.gather(*(one(c, idx) for c, idx in groups.items()))
        return out


class PositionsByAccountLoader(_PagesLoader):
    """``WindowQuery`` (account, filter, window) → ``Page`` of positions."""

    method = "fetch_positions_pages"


class OrdersByAccountLoader(_PagesLoader):
    """``WindowQuery`` (account, filter, window) → ``Page`` of orders."""

    method = "fetch_orders_pages"


class OrderByKeyLoader(_Loader):
    """``OrderKey`` → ``Order`` (``fetch_order``)."""

    async def batch_load_fn(self, keys: Sequence[OrderKey]) -> list[Order | GatewayError]:
        results = await asyncio.gather(*(self.registry.get(k.connection).fetch_order(k) for k in keys),
                                       return_exceptions=True)
        return [_settle(r, k.connection) for r, k in zip(results, keys, strict=True)]


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
    order_by_key: OrderByKeyLoader

    @classmethod
    def build(cls, registry: Registry) -> Loaders:
        return cls(
            AccountsByConnectionLoader(registry),
            AllocationGroupsByConnectionLoader(registry),
            PositionsByAccountLoader(registry),
            OrdersByAccountLoader(registry),
            OrderByKeyLoader(registry),
        )

    async def account(self, key: AccountKey) -> Account | None:
        """The account for ``key``, from its connection's account list (``None`` if absent)."""
        accounts = await self.accounts_by_connection.load(key.connection)
        return next((a for a in accounts if a.key == key), None)

    async def allocation_group(self, key: AllocationGroupKey) -> AllocationGroup | None:
        groups = await self.allocation_groups_by_connection.load(key.connection)
        return next((g for g in groups if g.key == key), None)
