"""Per-operation DataLoaders (aiodataloader), never shared between operations or principals. Each
batches by connection: one adapter call per connection (or per account where the broker has no batch
read), whatever number of fields or items the query selects. Every connection has loaders of its own
(:class:`PerConnection`), so a slow broker's batch never holds up another broker's. What outlives the operation is the
connections' snapshots (``gateway.brokers.snapshots``): keys carry the ``maxAge`` the field asked for,
and the adapter is called with it (``budget.accepting``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiodataloader import DataLoader

from ..brokers import budget
from ..brokers.base import Page, WindowQuery
from ..domain.errors import GatewayError, InternalError, OrderNotFound
from ..domain.keys import AccountKey, AllocationGroupKey, OrderKey
from ..domain.models import Account, AllocationGroup, Order
from ..registry import Registry
from ..request_id import current_request_id

__all__ = ["GroupWindow", "Loaders", "internal_error"]

log = logging.getLogger(__name__)


class _Loader(DataLoader):  # type: ignore[misc]
    """A DataLoader whose batches count as their operation's work (cancelled when it ends)."""

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry
        batch = self.batch_load_fn

        async def adopted(keys: Sequence[Any]) -> Any:
            budget.adopt_current_task()
            return await batch(keys)

        self.batch_load_fn = adopted


def _connection_of(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, tuple):
        return str(key[0].connection)
    found = getattr(key, "connection", None) or getattr(getattr(key, "account", None), "connection", None)
    return str(found if found is not None else key.group.connection)


def _group(keys: Sequence[Any]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(_connection_of(key), []).append(i)
    return groups


class PerConnection:
    """One loader of ``kind`` per connection, made on first use: a batch holds only one connection's
    keys, so it completes when that broker answers, whatever the others do."""

    def __init__(self, kind: type[_Loader], registry: Registry) -> None:
        self.kind = kind
        self.registry = registry
        self._loaders: dict[str, _Loader] = {}

    def load(self, key: Any) -> Any:
        connection = _connection_of(key)
        loader = self._loaders.get(connection)
        if loader is None:
            loader = self._loaders[connection] = self.kind(self.registry)
        return loader.load(key)


class AccountsByConnectionLoader(_Loader):
    """connection name → ``list[Account]`` (``fetch_accounts``)."""

    async def batch_load_fn(self, keys: Sequence[str]) -> list[list[Account] | GatewayError]:
        results = await asyncio.gather(*(self.registry.get(k).read_accounts() for k in keys), return_exceptions=True)
        return [_settle(r, k) for r, k in zip(results, keys, strict=True)]


class AccountListByConnectionLoader(_Loader):
    """connection name → ``list[Account]`` without balances (``read_account_list``)."""

    async def batch_load_fn(self, keys: Sequence[str]) -> list[list[Account] | GatewayError]:
        results = await asyncio.gather(*(self.registry.get(k).read_account_list() for k in keys),
                                       return_exceptions=True)
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
            except Exception as exc:  # noqa: BLE001 - one connection's failure spoils nothing else
                pages = [_settle(exc, conn)] * len(idx)
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
    """A loader's result for one key: the value, the connection's ``GatewayError``, or, for an
    unexpected exception, an ``InternalError`` of that connection alone (logged once, with the
    traceback and the request id); cancellation goes on up."""
    if isinstance(result, GatewayError):
        return result.with_connection(connection)
    if isinstance(result, Exception):
        return internal_error(result, connection)
    if isinstance(result, BaseException):
        raise result
    return result


def internal_error(exc: Exception, connection: str) -> InternalError:
    """``exc`` (unexpected) as the ``InternalError`` of ``connection``, logged once."""
    rid = current_request_id()
    log.error("unexpected error serving connection %s (request %s)", connection, rid, exc_info=exc)
    return InternalError(f"internal error while serving {connection}; the gateway's log has it under request id "
                         f"{rid}", connection=connection, request_id=rid)


@dataclass(slots=True)
class Loaders:
    """Every loader of one request."""

    accounts_by_connection: PerConnection
    allocation_groups_by_connection: PerConnection
    positions_by_account: PerConnection
    orders_by_account: PerConnection
    orders_by_group: PerConnection
    order_by_key: PerConnection
    account_list_by_connection: PerConnection

    @classmethod
    def build(cls, registry: Registry) -> Loaders:
        return cls(*(PerConnection(kind, registry) for kind in (
            AccountsByConnectionLoader, AllocationGroupsByConnectionLoader, PositionsByAccountLoader,
            OrdersByAccountLoader, OrdersByGroupLoader, OrderByKeyLoader, AccountListByConnectionLoader)))

    async def account(self, key: AccountKey) -> Account | None:
        """The account for ``key``, from its connection's account list without balances (``None``
        if absent)."""
        accounts = await self.account_list_by_connection.load(key.connection)
        return next((a for a in accounts if a.key == key), None)

    async def allocation_group(self, key: AllocationGroupKey) -> AllocationGroup | None:
        groups = await self.allocation_groups_by_connection.load(key.connection)
        return next((g for g in groups if g.key == key), None)
