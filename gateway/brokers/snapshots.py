"""Snapshots of what each account looks like at the broker, shared by every request of a connection.

A read names what it reads (a hashable key: resource, account, filter, window) and how old an answer it
accepts (``max_age`` seconds). :meth:`SnapshotStore.read` answers

* from the snapshot of that key when it is younger than ``max_age`` (a *hit*);
* by joining an identical read that is already on its way, queued or in flight (*single flight*:
  concurrent identical reads cost one upstream call);
* else by reading (a *miss*) and keeping the result with the time it arrived (``as_of``).

A read that every caller has abandoned (client gone, deadline passed) is cancelled, never left running
for nobody. The gateway's own order writes and the order-status watchers feed the same snapshots
(:meth:`record_orders`), so a client reads its own writes at once and watchers and queries do not read
the same thing twice. Snapshots are per connection: everyone allowed on a connection sees the same broker
login, so sharing them between API keys shows nobody anything new (ARCHITECTURE.md, "Loaders are per
request"; what outlives a request here is keyed by connection and bounded by ``max_age`` and ``ttl``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from ..domain.keys import AccountKey
from .metrics import NULL, SessionMetrics

__all__ = ["Snapshot", "SnapshotStore", "stamp_as_of"]

T = TypeVar("T")


@dataclass(slots=True)
class Snapshot(Generic[T]):
    """A value and when it arrived from the broker (``as_of`` UTC, ``at`` monotonic)."""

    value: T
    as_of: datetime
    at: float


@dataclass(eq=False, slots=True)
class _Flight:
    task: asyncio.Task[Any]
    generation: int
    joiners: int = 1


def resource_of(key: Hashable) -> str:
    return str(key[0]) if isinstance(key, tuple) and key else "read"


def account_of(key: Hashable) -> AccountKey | None:
    if isinstance(key, tuple) and len(key) > 1 and isinstance(key[1], AccountKey):
        return key[1]
    return None


class SnapshotStore:
    """Snapshots and flights of one connection; see the module docstring.

    Keys are tuples ``(resource, AccountKey | None, ...)``; ``resource`` is ``"orders"``,
    ``"positions"``, ``"balances"`` or another read's name (metrics label, invalidation).
    ``ttl`` bounds how long any snapshot is kept; at most ``capacity`` are kept (least recently used
    go first).
    """

    def __init__(self, connection: str, *, metrics: SessionMetrics = NULL, ttl: float = 600.0,
                 capacity: int = 10_000) -> None:
        self.connection = connection
        self.metrics = metrics
        self.ttl = ttl
        self.capacity = capacity
        self._snapshots: OrderedDict[Hashable, Snapshot[Any]] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._generation: dict[AccountKey | None, int] = {}

    def peek(self, key: Hashable) -> Snapshot[Any] | None:
        snap = self._snapshots.get(key)
        if snap is not None and time.monotonic() - snap.at > self.ttl:
            del self._snapshots[key]
            return None
        return snap

    async def read(self, key: Hashable, max_age: float, load: Callable[[], Awaitable[T]]) -> Snapshot[T]:
        """The snapshot of ``key`` no older than ``max_age`` seconds, reading it when needed.
        Raises whatever ``load`` raises (a failed read is not kept)."""
        resource = resource_of(key)
        snap = self.peek(key)
        if snap is not None and max_age > 0 and time.monotonic() - snap.at <= max_age:
            self._snapshots.move_to_end(key)
            self.metrics.snapshot_hits.labels(self.connection, resource).inc()
            return snap
        generation = self._generation.get(account_of(key), 0)
        flight = self._flights.get(key)
        if flight is not None and not flight.task.done() and flight.generation == generation:
            flight.joiners += 1
            self.metrics.singleflight_joins.labels(self.connection, resource).inc()
        else:
            self.metrics.snapshot_misses.labels(self.connection, resource).inc()
            task = asyncio.get_running_loop().create_task(self._load(key, load, generation))
            task.add_done_callback(_retrieve)
            flight = self._flights[key] = _Flight(task, generation)
        try:
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.task.cancelled():
                raise
            flight.joiners -= 1
            if flight.joiners <= 0:
                flight.task.cancel()  # nobody wants it any more
            raise

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[T]], generation: int) -> Snapshot[T]:
        try:
            value = await load()
        finally:
            flight = self._flights.get(key)
            if flight is not None and flight.generation == generation:
                del self._flights[key]
        snap = Snapshot(value, datetime.now(UTC), time.monotonic())
        stamp_as_of(value, snap.as_of)
        if self._generation.get(account_of(key), 0) == generation:  # nothing changed the account meanwhile
            self._keep(key, snap)
        return snap

    def _keep(self, key: Hashable, snap: Snapshot[Any]) -> None:
        self._snapshots[key] = snap
        self._snapshots.move_to_end(key)
        while len(self._snapshots) > self.capacity:
            self._snapshots.popitem(last=False)

    def invalidate(self, account: AccountKey | None, resources: Iterable[str] | None = None,
                   keep: Hashable | None = None) -> None:
        """Drop the account's snapshots (of ``resources``, or all; never ``keep``), and let no read
        that began before this moment be kept or joined."""
        wanted = set(resources) if resources is not None else None
        for key in [k for k in self._snapshots if account_of(k) == account and k != keep
                    and (wanted is None or resource_of(k) in wanted)]:
            del self._snapshots[key]
        self._generation[account] = self._generation.get(account, 0) + 1

    def update(self, key: Hashable, change: Callable[[Any], Any]) -> bool:
        """Apply ``change`` to the value of ``key`` in place (keeping its ``as_of``); ``False`` when
        there is no snapshot of ``key``."""
        snap = self.peek(key)
        if snap is None:
            return False
        snap.value = change(snap.value)
        return True

    def keys(self, resource: str, account: AccountKey | None) -> list[Hashable]:
        return [k for k in self._snapshots if resource_of(k) == resource and account_of(k) == account]

    def clear(self) -> None:
        self._snapshots.clear()
        for flight in list(self._flights.values()):
            with contextlib.suppress(Exception):
                flight.task.cancel()
        self._flights.clear()


def stamp_as_of(value: Any, as_of: datetime) -> None:
    """Set ``as_of`` on the orders and positions of a read (a list, a page's ``items``, or one)."""
    items = getattr(value, "items", value)
    if not isinstance(items, list):
        items = [items]
    for item in items:
        if hasattr(item, "as_of"):
            item.as_of = as_of


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a failed read's exception as seen even when every caller has gone."""
    if not task.cancelled():
        task.exception()
