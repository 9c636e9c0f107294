"""The critical section of a broker session whose state is global (IBKR's selected account).

:class:`SessionSection` is entered with ``async with section.hold() as held``. Inside one process it
is a :class:`PriorityLock` (order writes first, then reads, then background work; waits bounded by the
deadline, ending in :class:`BrokerBusy`). With Redis it is also a :class:`RedisLease` shared by every
replica on the login: a lease renewed while held and fenced (each holder gets a higher token; a holder
whose renewal failed, or that stalled past the lease, is refused by :meth:`Held.check` before its next
upstream call), and the session's shared value (IBKR: the selected account) lives beside the lease,
written only by the lease's holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from ..domain.errors import BrokerBusy, BrokerNotAvailable
from . import budget
from .metrics import NULL, SessionMetrics

__all__ = ["Held", "LeaseLost", "PriorityLock", "RedisLease", "SessionSection"]

log = logging.getLogger(__name__)


class LeaseLost(BrokerBusy):
    """The replica lost the session's lease (renewal failed, or it stalled past the lease): it must
    not talk to the session any more; nothing further was sent."""


class PriorityLock:
    """An asyncio lock handed to the waiter of best ``(priority, arrival)`` on release."""

    def __init__(self) -> None:
        self._locked = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @property
    def locked(self) -> bool:
        return self._locked

    @property
    def waiting(self) -> int:
        return sum(1 for *_, f in self._waiters if not f.done())

    async def acquire(self, patience: float) -> bool:
        """``True`` once held; ``False`` when ``patience`` seconds passed first."""
        if not self._locked and not self.waiting:
            self._locked = True
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(budget.priority.get()), next(self._seq), future))
        try:
            done, _ = await asyncio.wait({future}, timeout=max(patience, 0.0))
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed over just as we were cancelled: pass it on
            future.cancel()
            raise
        if done:
            return True
        future.cancel()
        return False

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # handed over: stays locked
                return
        self._locked = False


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_FENCED_SET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""


class RedisLease:
    """A lease on ``name`` in Redis: SET NX PX with a fencing token (``INCR``), renewed every third of
    ``ttl`` while held, released only by its holder."""

    def __init__(self, redis: Any, name: str, ttl: float = 5.0, prefix: str = "gateway:session:") -> None:
        self.redis = redis
        self.key = f"{prefix}{name}:lease"
        self.fence_key = f"{prefix}{name}:fence"
        self.value_key = f"{prefix}{name}:value"
        self.ttl = ttl
        self.replica = uuid.uuid4().hex[:12]
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._fenced_set = redis.register_script(_FENCED_SET)

    async def acquire(self, patience: float) -> str | None:
        """The token once held, ``None`` when ``patience`` seconds passed first."""
        deadline = time.monotonic() + max(patience, 0.0)
        pause = 0.005
        while True:
            fence = await self.redis.incr(self.fence_key)
            token = f"{fence}:{self.replica}"
            if await self.redis.set(self.key, token, nx=True, px=int(self.ttl * 1000)):
                return token
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)

    async def renew(self, token: str) -> bool:
        return bool(await self._renew(keys=[self.key], args=[token, int(self.ttl * 1000)]))

    async def release(self, token: str) -> None:
        await self._release(keys=[self.key], args=[token])

    async def read_value(self) -> str | None:
        raw = await self.redis.get(self.value_key)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def write_value(self, token: str, value: str | None) -> bool:
        """Store the session's value, only while ``token`` holds the lease."""
        if value is None:
            return bool(await self._fenced_set(keys=[self.key, self.value_key], args=[token, "", 86_400_000]))
        return bool(await self._fenced_set(keys=[self.key, self.value_key], args=[token, value, 86_400_000]))


@dataclass(slots=True)
class Held:
    """The section as held by one task: ``value`` is the session's shared value as last known
    (``None`` = unknown), :meth:`check` refuses to go on once the lease is lost."""

    section: SessionSection
    value: str | None
    token: str | None = None
    valid_until: float = float("inf")
    lost: bool = False

    def check(self) -> None:
        """Raise :class:`LeaseLost` when this holder may no longer act on the session."""
        if self.lost or time.monotonic() >= self.valid_until:
            raise LeaseLost(f"the {self.section.connection} session's lease was lost; nothing further was sent",
                            connection=self.section.connection, retry_after=1.0)

    async def set_value(self, value: str | None) -> None:
        """Record the session's new value (the account now selected) for every replica."""
        self.value = value
        self.section.value = value
        if self.token is not None and self.section.lease is not None:
            self.check()
            if not await self.section.lease.write_value(self.token, value):
                self.lost = True
                self.check()


class SessionSection:
    """The critical section of one connection (see the module docstring)."""

    def __init__(self, connection: str, *, lease: RedisLease | None = None, metrics: SessionMetrics = NULL,
                 max_wait: float = 60.0) -> None:
        self.connection = connection
        self.lock = PriorityLock()
        self.lease = lease
        self.metrics = metrics
        self.max_wait = max_wait
        self.value: str | None = None  # this process' last known value (without Redis: the truth)

    def forget(self) -> None:
        self.value = None

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[Held]:
        """Hold the section for the block (raises :class:`BrokerBusy` when the deadline comes first)."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        prio = budget.priority.get().name
        if not await self.lock.acquire(budget.remaining(self.max_wait) or 0.0):
            self._busy(began)
        try:
            held = Held(self, self.value)
            renewer: asyncio.Task[None] | None = None
            if self.lease is not None:
                try:
                    token = await self.lease.acquire(budget.remaining(self.max_wait) or 0.0)
                    if token is None:
                        self._busy(began)
                    assert token is not None
                    held.token = token
                    held.valid_until = time.monotonic() + self.lease.ttl * 0.8
                    held.value = self.value = await self.lease.read_value() or None
                except (OSError, RedisError) as exc:  # the replicas' coordination is down: do not guess
                    down = BrokerNotAvailable(f"the {self.connection} session's lease cannot be taken: Redis is "
                                              "unreachable; nothing was sent", connection=self.connection)
                    down.sent = False
                    raise down from exc
                renewer = loop.create_task(self._renew(held))
            self.metrics.lock_wait.labels(self.connection, prio).observe(loop.time() - began)
            entered = loop.time()
            single = budget.single_attempt.set(True)  # no read waits to retry while others wait for us
            try:
                yield held
            finally:
                budget.single_attempt.reset(single)
                self.metrics.lock_hold.labels(self.connection).observe(loop.time() - entered)
                if renewer is not None:
                    renewer.cancel()
                    with contextlib.suppress(BaseException):
                        await renewer
                if held.token is not None and self.lease is not None:
                    with contextlib.suppress(Exception):
                        await self.lease.release(held.token)
        finally:
            self.lock.release()

    def _busy(self, began: float) -> None:
        self.metrics.busy.labels(self.connection).inc()
        waited = asyncio.get_running_loop().time() - began
        raise BrokerBusy(f"the {self.connection} session's critical section stayed busy for {waited:.1f} s, until "
                         "the deadline; nothing was sent", connection=self.connection, retry_after=1.0)

    async def _renew(self, held: Held) -> None:
        assert self.lease is not None and held.token is not None
        while True:
            await asyncio.sleep(self.lease.ttl / 3)
            try:
                ok = await self.lease.renew(held.token)
            except Exception:  # Redis unreachable: the lease will lapse; stop acting before it does
                log.warning("%s: could not renew the session lease", self.connection, exc_info=True)
                continue
            if not ok:
                held.lost = True
                return
            held.valid_until = time.monotonic() + self.lease.ttl * 0.8
