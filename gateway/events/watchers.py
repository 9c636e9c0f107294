"""Watchers: turn broker order updates into events on the bus.

One watcher per (connection, account) that somebody subscribes to, shared by all its subscribers, so
upstream reads never grow with the number of subscribers. A watcher streams where the adapter can
(``watch_orders``) and otherwise polls ``fetch_orders`` at an adaptive interval: ``fast_interval``
while the account has working orders, ``slow_interval`` when it has none. A poll reads only the
working orders and the few that just left them; the whole list is read every ``resync_interval``. The adapters' own
client-side limiters keep polls within each broker's pacing. A stream is re-synchronised from a REST
snapshot every ``resync_interval`` and whenever it ends or stays silent past ``silence_timeout``.

With several replicas, :class:`RedisState` holds the last known status of every order and a lease
per account: only the replica that holds the lease polls; the others consume the shared stream. The
status store's compare-and-set decides whether a change is new, so a change seen by a mutation on one
replica and by the poller on another is published once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..brokers import budget
from ..domain.enums import OrderStatus
from ..domain.errors import GatewayError, NotSupported, OrderNotFound
from ..domain.keys import AccountKey, OrderKey
from ..domain.models import Order
from ..domain.requests import OrderFilter
from ..registry import Registry
from .bus import EventBus
from .codec import OrderEvent
from .metrics import GatewayMetrics

__all__ = ["MemoryState", "RedisState", "WatcherManager", "WatcherSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WatcherSettings:
    """Intervals in seconds (see the module docstring); ``lease_ttl`` bounds a dead replica's lease."""

    fast_interval: float = 1.0
    slow_interval: float = 5.0
    resync_interval: float = 30.0
    silence_timeout: float = 60.0
    lease_ttl: float = 10.0
    linger: float = 2.0


_WORKING = frozenset(s for s in OrderStatus if not s.is_terminal)
_WORKING_WORDS = frozenset(s.value for s in _WORKING)
_TERMINAL_WORDS = frozenset(s.value for s in OrderStatus if s.is_terminal)


@dataclass(slots=True)
class _Told:
    """What a running watcher's subscribers have been told: order id -> status (its first look's
    statuses included), and whether it has taken that first look."""

    statuses: dict[str, str] = field(default_factory=dict)
    looked: bool = False


def _key(account: AccountKey) -> str:
    return f"{account.connection}\x1f{account.account_number}"


class MemoryState:
    """Last known statuses and "live" marks for one process (leases are trivially held)."""

    def __init__(self, live_ttl: float = 30.0) -> None:
        self.statuses: dict[str, dict[str, str]] = {}
        self.live_ttl = live_ttl
        self.live: dict[str, float] = {}  # account -> monotonic time its watch is continuous until

    async def swap(self, account: AccountKey, order_id: str, status: str) -> tuple[bool, str | None]:
        table = self.statuses.setdefault(_key(account), {})
        old = table.get(order_id)
        if old == status:
            return False, old
        table[order_id] = status
        return True, old

    async def working(self, account: AccountKey) -> list[str]:
        """Ids of the account's orders last known in a working (non-terminal) status."""
        return [i for i, s in self.statuses.get(_key(account), {}).items() if s in _WORKING_WORDS]

    async def forget(self, account: AccountKey, order_id: str) -> None:
        self.statuses.get(_key(account), {}).pop(order_id, None)

    async def revert(self, account: AccountKey, order_id: str, new: str, old: str | None) -> None:
        """Undo a :meth:`swap` to ``new`` whose event could not be published (if nothing moved since)."""
        table = self.statuses.get(_key(account), {})
        if table.get(order_id) == new:
            if old is None:
                table.pop(order_id, None)
            else:
                table[order_id] = old

    async def baseline(self, account: AccountKey, statuses: dict[str, str]) -> bool:
        """A watcher's first look at ``account``.

        When no watcher has watched the account continuously up to now (no live mark), ``statuses`` become
        the known statuses without events (what changed while nobody watched is not news) and ``True``
        is returned. A known terminal status is kept (it cannot regress; a mutation may have just
        published it), and working orders that are no longer listed are forgotten. When the watch is
        continuous (a restarted or handed-over watcher), nothing is recorded and ``False`` is returned:
        the caller compares as usual.
        """
        key = _key(account)
        if self.live.get(key, 0.0) > time.monotonic():
            return False
        table = self.statuses.setdefault(key, {})
        for order_id, old in list(table.items()):
            if order_id not in statuses and old in _WORKING_WORDS:
                del table[order_id]
        for order_id, status in statuses.items():
            if table.get(order_id) not in _TERMINAL_WORDS:
                table[order_id] = status
        self.live[key] = time.monotonic() + self.live_ttl
        return True

    async def acquire(self, account: AccountKey) -> bool:
        key = _key(account)
        if key in self.live:  # renew the mark of a watch that has taken its baseline
            self.live[key] = time.monotonic() + self.live_ttl
        return True

    async def release(self, account: AccountKey) -> None:
        """A watcher stopped cleanly: the next one takes a fresh baseline."""
        self.live.pop(_key(account), None)

    async def close(self) -> None:
        return None


_REVERT = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""

_SWAP = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old == ARGV[2] then return {0, old} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if old then return {1, old} end
return {1}
"""

# KEYS: status hash, live mark. ARGV: hash ttl ms, live ttl ms, terminal words (comma separated),
# then order id / status pairs. Returns 1 when a fresh baseline was recorded, 0 when the watch is live.
_BASELINE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local terminal = {}
for word in string.gmatch(ARGV[3], '[^,]+') do terminal[word] = true end
local listed = {}
for i = 4, #ARGV, 2 do listed[ARGV[i]] = ARGV[i + 1] end
local known = redis.call('HGETALL', KEYS[1])
for i = 1, #known, 2 do
  local id, old = known[i], known[i + 1]
  if listed[id] == nil and not terminal[old] then redis.call('HDEL', KEYS[1], id) end
end
for i = 4, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if not (old and terminal[old]) then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
"""


class RedisState:
    """Last known statuses (a hash per account) and poll leases (redis-py ``Lock``) shared by replicas."""

    def __init__(self, url: str, lease_ttl: float, prefix: str = "gateway:watch:", ttl_days: int = 7,
                 live_ttl: float | None = None) -> None:
        from ..redisclient import blocking_client

        self.redis: Any = blocking_client(url)
        self.prefix = prefix
        self.lease_ttl = lease_ttl
        self.ttl_ms = ttl_days * 86_400_000
        self.replica = uuid.uuid4().hex
        self._swap = self.redis.register_script(_SWAP)
        self._revert = self.redis.register_script(_REVERT)
        self._baseline = self.redis.register_script(_BASELINE)
        self.live_ms = int((live_ttl if live_ttl is not None else 3 * lease_ttl) * 1000)
        self._locks: dict[str, Any] = {}

    async def swap(self, account: AccountKey, order_id: str, status: str) -> tuple[bool, str | None]:
        result = await self._swap(keys=[self.prefix + "status:" + _key(account)], args=[order_id, status, self.ttl_ms])
        old = result[1].decode() if len(result) > 1 and result[1] is not None else None
        return bool(result[0]), old

    async def working(self, account: AccountKey) -> list[str]:
        table = await self.redis.hgetall(self.prefix + "status:" + _key(account))
        return [k.decode() for k, v in table.items() if v.decode() in _WORKING_WORDS]

    async def forget(self, account: AccountKey, order_id: str) -> None:
        await self.redis.hdel(self.prefix + "status:" + _key(account), order_id)

    async def revert(self, account: AccountKey, order_id: str, new: str, old: str | None) -> None:
        await self._revert(keys=[self.prefix + "status:" + _key(account)], args=[order_id, new, old or ""])

    async def baseline(self, account: AccountKey, statuses: dict[str, str]) -> bool:
        """As :meth:`MemoryState.baseline`, atomically (a Lua script); the live mark is shared by the
        replicas, so a watcher handed over from a replica that died goes on comparing."""
        args: list[Any] = [self.ttl_ms, self.live_ms, ",".join(sorted(_TERMINAL_WORDS))]
        for order_id, status in statuses.items():
            args += [order_id, status]
        return bool(await self._baseline(keys=[self.prefix + "status:" + _key(account),
                                               self.prefix + "live:" + _key(account)], args=args))

    async def acquire(self, account: AccountKey) -> bool:
        """Take or renew this replica's lease on polling ``account``."""
        from redis.exceptions import LockError

        name = self.prefix + "lease:" + _key(account)
        lock = self._locks.get(name)
        try:
            if lock is not None and await lock.owned():
                await lock.reacquire()
                await self.redis.pexpire(self.prefix + "live:" + _key(account), self.live_ms)
                return True
            lock = self.redis.lock(name, timeout=self.lease_ttl, blocking=False)
            if await lock.acquire():
                self._locks[name] = lock
                await self.redis.pexpire(self.prefix + "live:" + _key(account), self.live_ms)
                return True
        except LockError:
            self._locks.pop(name, None)
        return False

    async def release(self, account: AccountKey) -> None:
        from redis.exceptions import LockError

        lock = self._locks.pop(self.prefix + "lease:" + _key(account), None)
        if lock is not None:
            with contextlib.suppress(LockError):
                if await lock.owned():  # a clean stop: the next watcher takes a fresh baseline
                    await self.redis.delete(self.prefix + "live:" + _key(account))
                await lock.release()

    async def close(self) -> None:
        for name in list(self._locks):
            lock = self._locks.pop(name)
            with contextlib.suppress(Exception):
                await lock.release()
        await self.redis.aclose()


class WatcherManager:
    """Interest-counted watchers per account, and the one place order changes become events."""

    def __init__(self, registry: Registry, bus: EventBus, state: MemoryState | RedisState,
                 settings: WatcherSettings, metrics: GatewayMetrics) -> None:
        self.registry = registry
        self.bus = bus
        self.state = state
        self.settings = settings
        self.metrics = metrics
        self.interest: dict[AccountKey, int] = {}
        self.tasks: dict[AccountKey, asyncio.Task[None]] = {}
        # per running watcher, kept across its restarts and gone with it
        self._told: dict[AccountKey, _Told] = {}
        self._stopping: dict[AccountKey, asyncio.TimerHandle] = {}

    @property
    def active(self) -> int:
        return len(self.tasks)

    async def observe(self, account: AccountKey, orders: Iterable[Order]) -> list[OrderEvent]:
        """Publish the status changes among ``orders`` (compared with the last known statuses), and
        give every order to the connection's snapshots (a client reads what the gateway wrote or
        saw at once; a watcher and a query never read the same thing twice)."""
        published: list[OrderEvent] = []
        adapter = self.registry.adapters.get(account.connection)
        told = self._told.get(account)
        for order in orders:
            changed, old = await self.state.swap(account, order.key.broker_order_id, order.status.value)
            if adapter is not None:
                adapter.record_orders([order], changed=changed)
            if not changed:
                if told is not None:
                    told.statuses[order.key.broker_order_id] = order.status.value
                continue
            received = datetime.now(UTC)
            # the broker's time for the change (fill, cancel, ... time) where it reports one
            event = OrderEvent(order=order, previous_status=OrderStatus(old) if old else None,
                               status=order.status, at=order.updated_at or received, received_at=received)
            try:
                event = event.with_id(await self.bus.publish(event))
            except BaseException:
                # not published: let the next look see the change again (at least once, never lost)
                with contextlib.suppress(Exception):
                    await self.state.revert(account, order.key.broker_order_id, order.status.value, old)
                raise
            self.metrics.events_published.inc()
            if told is not None:
                told.statuses[order.key.broker_order_id] = order.status.value
            published.append(event)
        return published

    @contextlib.asynccontextmanager
    async def watching(self, accounts: Iterable[AccountKey]) -> AsyncIterator[None]:
        """Keep watchers running for ``accounts`` while the block runs."""
        held = list(dict.fromkeys(accounts))
        for account in held:
            self._hold(account)
        try:
            yield
        finally:
            for account in held:
                self._drop(account)

    def _hold(self, account: AccountKey) -> None:
        self.interest[account] = self.interest.get(account, 0) + 1
        pending = self._stopping.pop(account, None)
        if pending is not None:
            pending.cancel()
        if account not in self.tasks:
            # a context of its own: not the deadline, time budget or slots of the operation that started it
            self.tasks[account] = asyncio.create_task(self._watch(account), name=f"watch-{account.connection}",
                                                      context=contextvars.Context())
            self.metrics.active_watchers.set(self.active)

    def _drop(self, account: AccountKey) -> None:
        self.interest[account] -= 1
        if self.interest[account] > 0:
            return
        del self.interest[account]
        loop = asyncio.get_running_loop()
        self._stopping[account] = loop.call_later(self.settings.linger, self._stop, account)

    def _stop(self, account: AccountKey) -> None:
        self._stopping.pop(account, None)
        if self.interest.get(account):
            return
        task = self.tasks.pop(account, None)
        if task is not None:
            task.cancel()
        self.metrics.active_watchers.set(self.active)

    async def close(self) -> None:
        for handle in self._stopping.values():
            handle.cancel()
        self._stopping.clear()
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.metrics.active_watchers.set(0)

    async def _watch(self, account: AccountKey) -> None:
        """The watcher of ``account``, supervised: a broker error waits a slow interval; any other
        exception (a Redis connection lost, a bug) is logged, counted
        (``gateway_watcher_restarts_total``) and the watcher starts again after a back-off (0.5 s,
        doubling to 30 s, reset by a round that ends without one), so its subscribers keep getting
        events. A restarted watcher whose shared state is gone (Redis restarted empty, or its live mark
        expired during a long outage) compares with what it had told its subscribers, so a change made
        during the failure is published, not taken as the new baseline. Its polls run at background
        priority."""
        budget.priority.set(budget.Priority.BACKGROUND)
        adapter = self.registry.get(account.connection)
        failures = 0
        told = self._told[account] = _Told()
        try:
            while True:
                try:
                    if not await self.state.acquire(account):  # another replica polls this account
                        await asyncio.sleep(self.settings.lease_ttl / 3)
                        continue
                    try:
                        await self._stream(adapter, account)
                    except NotSupported:
                        await self._poll_once(adapter, account, baseline=True)
                        await self._poll(adapter, account)
                    failures = 0
                except GatewayError as exc:
                    log.info("watcher %s: %s", account, exc)
                    await asyncio.sleep(self.settings.slow_interval)
                except Exception:
                    failures += 1
                    self.metrics.watcher_restarts.labels(account.connection).inc()
                    pause = min(0.5 * 2 ** (failures - 1), 30.0)
                    log.warning("watcher %s failed; restarting in %.1f s", account, pause, exc_info=True)
                    await asyncio.sleep(pause)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self.state.release(account)
            raise
        finally:
            if self._told.get(account) is told:  # not a successor's, started while this one stopped
                del self._told[account]

    async def _poll_once(self, adapter: Any, account: AccountKey, *, baseline: bool = False,
                         sweep: bool = True) -> bool:
        """One REST snapshot; ``True`` when the account has working orders.

        A sweep (the baseline, each resync) reads the whole order list. A regular poll reads only the
        working orders (the filter is pushed down where the broker can) and, one by one, the orders
        last known as working that left that list: it costs one list page however long the account's
        history is, plus one read per order that just finished.
        """
        self.metrics.upstream_polls.labels(account.connection).inc()
        if baseline or sweep:
            orders: list[Order] = list(await adapter.fetch_orders(account))
        else:
            orders = list(await adapter.fetch_orders(account, OrderFilter(statuses=_WORKING)))
            listed = {o.key.broker_order_id for o in orders}
            for order_id in await self.state.working(account):
                if order_id in listed:
                    continue
                try:
                    orders.append(await adapter.fetch_order(OrderKey(account.connection, account.account_number,
                                                                     order_id)))
                except OrderNotFound:
                    await self.state.forget(account, order_id)
        if baseline:
            listed = {o.key.broker_order_id: o.status.value for o in orders}
            told = self._told[account]  # the running watcher's (see _watch)
            if await self.state.baseline(account, listed):
                if not told.looked:  # a first look: what changed while nobody watched is not news
                    told.statuses.update(listed)
                    told.looked = True
                    return any(not o.status.is_terminal for o in orders)
                # a restart after the shared state was lost: what changed since the subscribers were
                # last told is news; set the state back to that, and compare as usual below
                for order_id, status in listed.items():
                    before = told.statuses.get(order_id)
                    if before is None:
                        await self.state.forget(account, order_id)
                    elif before != status:
                        await self.state.revert(account, order_id, status, before)
            told.looked = True
        await self.observe(account, orders)
        return any(not o.status.is_terminal for o in orders)

    async def _poll(self, adapter: Any, account: AccountKey) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self.settings.resync_interval
        working = True
        while True:
            await asyncio.sleep(self.settings.fast_interval if working else self.settings.slow_interval)
            if not await self.state.acquire(account):
                return
            sweep = loop.time() >= next_sweep
            if sweep:
                next_sweep = loop.time() + self.settings.resync_interval
            try:
                working = await self._poll_once(adapter, account, sweep=sweep)
            except GatewayError as exc:
                log.info("poll of %s failed: %s", account, exc)
                working = False

    async def _stream(self, adapter: Any, account: AccountKey) -> None:
        """Follow the adapter's order stream (raises ``NotSupported`` where there is none)."""
        stream = adapter.watch_orders(account)
        await self._poll_once(adapter, account, baseline=True)
        loop = asyncio.get_running_loop()
        next_resync = loop.time() + self.settings.resync_interval
        silent_since = loop.time()
        renew_every = self.settings.lease_ttl / 3
        iterator = stream.__aiter__()
        pending: asyncio.Future[Order] | None = None
        try:
            while True:
                if pending is None:  # kept across a resync: cancelling it would close the stream
                    pending = asyncio.ensure_future(iterator.__anext__())
                now = loop.time()
                due = min(next_resync, silent_since + self.settings.silence_timeout)
                done, _ = await asyncio.wait({pending}, timeout=max(min(due - now, renew_every), 0.01))
                if not done:
                    if loop.time() >= due:  # silent, or a resync is due: re-synchronise from REST
                        await self._poll_once(adapter, account)
                        next_resync = loop.time() + self.settings.resync_interval
                        silent_since = loop.time()
                    if not await self.state.acquire(account):  # renew the lease while the stream is quiet
                        return
                    continue
                silent_since = loop.time()
                finished, pending = pending, None
                try:
                    order = finished.result()
                except StopAsyncIteration:
                    await self._poll_once(adapter, account)
                    return
                await self.observe(account, [order])
                if not await self.state.acquire(account):
                    return
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            with contextlib.suppress(Exception):
                await iterator.aclose()  # type: ignore[attr-defined]
