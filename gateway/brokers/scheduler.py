"""One scheduler per broker session: every upstream call of a connection asks it for a permit.

A permit is a place in the session's pacing windows (:mod:`.pacing`). Calls wait for their permits
in a queue ordered by :class:`~.budget.Priority` (order writes, then reads, then background polls)
and, within a priority, fairly between API keys (weighted fair queueing on :data:`.budget.caller`), so
one key's flood cannot starve another key's small query. Every wait ends by the call's deadline
(:data:`.budget.deadline`): a call that could not get its permit in time raises :class:`BrokerBusy`
with an estimate of when it could go, and was not sent.

A call whose endpoint is paced on its own (IBKR live orders, 1 per 5 s) does not hold up calls
behind it that need only the global window; a call that waits for the global window holds up every
call of lower rank (it is next).

:meth:`SessionScheduler.permits` obtains the permits of several calls at once, before a critical
section is entered (IBKR: a switch and the read that needs it); the calls made inside take them
instead of queueing again, and what is not used is given back. :meth:`SessionScheduler.exclusive`
lets one task alone talk to the session (an IBKR order request and its reply chain, which any other
request would void): new calls wait and the ones in flight are drained first.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import math
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ..domain.errors import BrokerBusy
from . import budget
from .breaker import ConnectionBreaker
from .metrics import NULL, SessionMetrics
from .pacing import GLOBAL, MemoryWindows, PacingRules, Ticket

__all__ = ["Permits", "SessionScheduler"]

#: the permits reserved by the enclosing ``async with scheduler.permits(...)`` block
_reserved: ContextVar[Permits | None] = ContextVar("gateway_reserved_permits", default=None)
#: the exclusive section the current task runs in (its owner id)
_owner: ContextVar[int | None] = ContextVar("gateway_exclusive_owner", default=None)
_owners = itertools.count(1)


@dataclass(slots=True)
class Permits:
    """Permits for a known list of calls, obtained together. While ``async with`` them, each call
    of the list takes its permit without queueing; on exit the unused ones are given back."""

    scheduler: SessionScheduler
    slots: list[tuple[str | None, tuple[Ticket, ...]]]  # (endpoint bucket, tickets) per call
    used: list[bool] = field(default_factory=list)
    _token: Any = None

    def __post_init__(self) -> None:
        self.used = [False] * len(self.slots)

    def take(self, method: str, path: str) -> tuple[Ticket, ...] | None:
        """The unused permit for ``method path`` (same endpoint pacing), or ``None``."""
        bucket = self.scheduler.rules.bucket(method, path)
        for i, (own, tickets) in enumerate(self.slots):
            if not self.used[i] and own == bucket:
                self.used[i] = True
                return tickets
        return None

    def unused(self) -> tuple[Ticket, ...]:
        return tuple(t for i, (_, tickets) in enumerate(self.slots) if not self.used[i] for t in tickets)

    async def __aenter__(self) -> Permits:
        self._token = _reserved.set(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        _reserved.reset(self._token)
        left = self.unused()
        self.used = [True] * len(self.slots)
        if left:
            await self.scheduler.windows.release(left)
            self.scheduler._kick()


@dataclass(eq=False, slots=True)
class _Waiter:
    rank: tuple[int, float, int]
    demand: dict[str, int]
    owner: int | None
    start_tag: float
    future: asyncio.Future[tuple[Ticket, ...]]


class SessionScheduler:
    """The queue in front of one connection's broker session (see the module docstring).

    Args:
        connection: the connection's name (metrics, errors).
        rules: its pacing windows.
        windows: where they are counted (:class:`~.pacing.MemoryWindows` by default,
            :class:`~.pacing.RedisWindows` to share them between replicas).
        metrics: the app's :class:`~.metrics.SessionMetrics`.
        max_wait: the bound of a wait without a deadline (background work), seconds.
        breaker: the connection's circuit (:mod:`.breaker`), which :class:`~.http.HttpClient` consults.
    """

    def __init__(self, connection: str, rules: PacingRules, windows: Any = None, *,
                 metrics: SessionMetrics = NULL, max_wait: float = 60.0, breaker: ConnectionBreaker | None = None) -> None:
        self.connection = connection
        self.rules = rules
        self.windows = windows or MemoryWindows(rules)
        self.metrics = metrics
        self.breaker = breaker or ConnectionBreaker(connection, metrics=metrics)
        self.max_wait = max_wait
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._vtime = 0.0
        self._finish: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._inflight = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self._exclusive: int | None = None
        self._gate = asyncio.Event()
        self._gate.set()
        self.sent = 0

    # -- permits --------------------------------------------------------------------------
    def permits(self, calls: list[tuple[str, str]]) -> _PermitRequest:
        """``async with scheduler.permits([(method, path), ...]):`` (see :class:`Permits`).
        Raises :class:`BrokerBusy` when they cannot all be had before the deadline."""
        return _PermitRequest(self, calls)

    async def _obtain(self, calls: list[tuple[str, str]]) -> Permits:
        demand = self.rules.demand(calls)
        tickets = await self._admit(demand) if demand else ()
        by_bucket: dict[str, list[Ticket]] = {}
        for t in tickets:
            by_bucket.setdefault(t.bucket, []).append(t)
        slots: list[tuple[str | None, tuple[Ticket, ...]]] = []
        for method, path in calls:
            own = self.rules.bucket(method, path)
            mine = []
            if self.rules.global_windows:
                mine.append(by_bucket[GLOBAL].pop())
            if own is not None:
                mine.append(by_bucket[own].pop())
            slots.append((own, tuple(mine)))
        return Permits(self, slots)

    async def _admit(self, demand: dict[str, int]) -> tuple[Ticket, ...]:
        owner = _owner.get()
        if not self._waiters and self._may_run(owner):
            admission = await self.windows.try_admit(demand, pending=True)
            if admission.tickets is not None:
                self.metrics.queue_wait.labels(self.connection, budget.priority.get().name).observe(0.0)
                return admission.tickets
        for bucket, need in demand.items():
            if any(need > w.limit for w in self.rules.windows(bucket)):
                raise BrokerBusy(f"{need} calls at once exceed the pacing of {bucket}", connection=self.connection)
        loop = asyncio.get_running_loop()
        prio = budget.priority.get()
        who = budget.caller.get()
        start = max(self._vtime, self._finish.get(who, 0.0))
        tag = start + sum(demand.values())
        self._finish[who] = tag
        waiter = _Waiter((int(prio), tag, next(self._seq)), demand, owner, start, loop.create_future())
        self._insert(waiter)
        began = loop.time()
        left = budget.remaining(self.max_wait)
        try:
            done, _ = await asyncio.wait({waiter.future}, timeout=max(left if left is not None else 0.0, 0.0))
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        if not done:
            retry = self._estimate(waiter)
            self._abandon(waiter)
            self.metrics.busy.labels(self.connection).inc()
            raise BrokerBusy(f"the {self.connection} session could not take the call before its deadline "
                             f"({len(self._waiters)} calls queued); nothing was sent",
                             connection=self.connection, retry_after=retry)
        self.metrics.queue_wait.labels(self.connection, prio.name).observe(loop.time() - began)
        return waiter.future.result()

    def _insert(self, waiter: _Waiter) -> None:
        lo, hi = 0, len(self._waiters)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._waiters[mid].rank <= waiter.rank:
                lo = mid + 1
            else:
                hi = mid
        self._waiters.insert(lo, waiter)
        self.metrics.queue_length.labels(self.connection).set(len(self._waiters))
        self._kick()

    def _abandon(self, waiter: _Waiter) -> None:
        if waiter.future.done() and not waiter.future.cancelled():
            tickets = waiter.future.result()  # admitted just as the caller gave up: give them back
            asyncio.get_running_loop().create_task(self.windows.release(tickets))
        waiter.future.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        self.metrics.queue_length.labels(self.connection).set(len(self._waiters))

    def _estimate(self, waiter: _Waiter) -> float:
        """Seconds until ``waiter`` could go: the calls ahead of it at each bucket's pace."""
        ahead = [w for w in self._waiters if w.rank < waiter.rank]
        worst = 1.0
        for bucket, need in waiter.demand.items():
            rate = min((w.limit / w.seconds for w in self.rules.windows(bucket)), default=math.inf)
            queued = sum(w.demand.get(bucket, 0) for w in ahead) + need
            worst = max(worst, queued / rate)
        return math.ceil(worst)

    def _may_run(self, owner: int | None) -> bool:
        return self._exclusive is None or owner == self._exclusive

    def _kick(self) -> None:
        self._wake.set()
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(
                self._dispatch(), name=f"scheduler-{self.connection}", context=contextvars.Context())

    async def _dispatch(self) -> None:
        """Admit waiters in rank order as their windows allow (see the module docstring)."""
        while True:
            self._wake.clear()
            sleep: float | None = None
            for waiter in list(self._waiters):
                if waiter.future.done():
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                    continue
                if not self._may_run(waiter.owner):
                    continue
                admission = await self.windows.try_admit(waiter.demand, pending=True)
                if waiter.future.done():  # gave up while we asked
                    if admission.tickets is not None:
                        await self.windows.release(admission.tickets)
                    continue
                if admission.tickets is not None:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                    self._vtime = max(self._vtime, waiter.start_tag)
                    waiter.future.set_result(admission.tickets)
                    continue
                sleep = admission.wait if sleep is None else min(sleep, admission.wait)
                if admission.blocked == GLOBAL:
                    break  # it is next for the global window: nobody behind it may take that
            self.metrics.queue_length.labels(self.connection).set(len(self._waiters))
            self._forget_idle_callers()
            if not self._waiters:
                await self._wake.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(sleep or 0.05, 0.001))

    def _forget_idle_callers(self) -> None:
        if len(self._finish) > 64:
            self._finish = {k: v for k, v in self._finish.items() if v > self._vtime}

    # -- calls ----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def call(self, method: str, path: str) -> AsyncIterator[None]:
        """Around one HTTP request: its permit (reserved, else queued for), the exclusive gate,
        and the in-flight count that an exclusive section drains. The permit's tickets count as
        "now" while the request is on its way and are stamped with the time its answer came: the
        broker saw the request before that, so the windows hold at the broker too, however late the
        request left or arrived."""
        reserved = _reserved.get()
        tickets = reserved.take(method, path) if reserved is not None and reserved.scheduler is self else None
        if tickets is None:
            permits = await self._obtain([(method, path)])
            tickets = permits.slots[0][1] if permits.slots else ()
        owner = _owner.get()
        if not self._may_run(owner):
            try:
                await self._wait(self._gate, "another task's order request")
            except BaseException:
                await self.windows.release(tickets)
                self._kick()
                raise
        self._inflight += 1
        self._drained.clear()
        self.sent += 1
        self.metrics.upstream_requests.labels(self.connection).inc()
        try:
            yield
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._drained.set()
            if tickets:
                stamping = self.windows.stamp(tickets)
                # a stamp that never suspends completes before any cancellation could land; others
                # (Redis) are shielded so that a cancelled caller still stamps
                await (stamping if getattr(self.windows, "stamps_at_once", False) else asyncio.shield(stamping))
                self._kick()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Only the current task's calls reach the session while the block runs (re-entrant)."""
        if self._exclusive is not None and _owner.get() == self._exclusive:
            yield
            return
        while self._exclusive is not None:
            await self._wait(self._gate, "another task's order request")
        owner = next(_owners)
        self._exclusive = owner
        self._gate.clear()
        token = _owner.set(owner)
        try:
            while self._inflight:
                await self._wait(self._drained, "calls in flight")
            yield
        finally:
            _owner.reset(token)
            self._exclusive = None
            self._gate.set()
            self._kick()

    async def _wait(self, event: asyncio.Event, what: str) -> None:
        left = budget.remaining(self.max_wait)
        try:
            await asyncio.wait_for(event.wait(), timeout=max(left if left is not None else 0.0, 0.0))
        except TimeoutError:
            self.metrics.busy.labels(self.connection).inc()
            raise BrokerBusy(f"the {self.connection} session was busy with {what} until the deadline; "
                             "nothing was sent", connection=self.connection, retry_after=1.0) from None

    async def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(BaseException):
                await self._dispatcher
            self._dispatcher = None
        for waiter in self._waiters:
            waiter.future.cancel()
        self._waiters.clear()


class _PermitRequest:
    """``async with scheduler.permits(calls)`` (obtains, then reserves for the block)."""

    def __init__(self, scheduler: SessionScheduler, calls: list[tuple[str, str]]) -> None:
        self.scheduler = scheduler
        self.calls = calls
        self.permits: Permits | None = None

    async def __aenter__(self) -> Permits:
        self.permits = await self.scheduler._obtain(self.calls)
        return await self.permits.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        assert self.permits is not None
        await self.permits.__aexit__(*exc)
