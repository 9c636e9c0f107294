"""What an upstream call may spend: its deadline, its priority, and on whose behalf it runs.

Three context variables travel with every task that serves a request (asyncio copies them into the
tasks a request starts, DataLoader batches included), so the scheduler and the HTTP client read them
without every adapter method passing them on:

* :data:`deadline`: the loop time (``loop.time()`` seconds) by which the caller needs an answer;
  every wait (rate limit, session lock, queue) and every HTTP attempt ends by then. ``within(s)``
  narrows it for a block (a connection's ``timeout`` bounds one read, retries included).
* :data:`priority`: :class:`Priority` of the calls (writes before reads before background polls).
* :data:`caller`: the API key's name, for a fair share of each connection between keys.
* :data:`max_age`: how old a snapshot (:mod:`.snapshots`) the current reads accept, in seconds;
  ``None`` = the connection's default for the resource. ``fresh()`` asks for a new read (a look-up
  that reconciles an order write must not trust an older snapshot).
* :data:`slots`: the semaphores an upstream request holds while it waits and runs: one per operation
  and one per API key (``[limits] max_upstream_per_operation``, ``max_upstream_per_key``), so that no
  operation and no key can have more than that many requests out at once (``upstream_slot()``).
* :data:`single_attempt`: set inside a session's critical section (:mod:`.section`), where a read
  must not wait for a retry (its backoff, its next permit) while others wait for the section: it
  fails at once and the caller retries outside.
* :data:`tasks`: the tasks an operation started for its upstream work (its DataLoader batches run in
  tasks of their own); when the operation ends, by answering or because its client went away, those
  still running are cancelled (``end_tasks``), so nothing keeps working for nobody.
* :data:`spent`: per operation, each connection's :class:`Spending` of its ``timeout``: the time its
  requests were on the network (or waiting to retry), however many reads the operation makes of it.
  Waiting for a permit does not spend it (the deadline bounds that), so a paced broker can take its
  time within the operation's deadline while a slow one ends within its ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from enum import IntEnum
from typing import Any

__all__ = ["Priority", "Spending", "accepting", "adopt_current_task", "caller", "deadline", "end_tasks", "fresh",
           "max_age", "priority", "remaining", "single_attempt", "slots", "spending", "spent", "tasks",
           "upstream_slot", "within", "writing"]


class Priority(IntEnum):
    """Lower goes first: order writes, then reads for a client, then background work (watchers)."""

    WRITE = 0
    READ = 1
    BACKGROUND = 2


deadline: ContextVar[float | None] = ContextVar("gateway_deadline", default=None)
priority: ContextVar[Priority] = ContextVar("gateway_priority", default=Priority.READ)
caller: ContextVar[str] = ContextVar("gateway_caller", default="")
max_age: ContextVar[float | None] = ContextVar("gateway_max_age", default=None)


class Spending:
    """How much of ``limit`` seconds one connection has spent in one operation: the union of the
    times any of its requests was in flight or waited to retry."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.used = 0.0
        self.active = 0
        self.since = 0.0

    def left(self) -> float:
        now = _now()
        return self.limit - self.used - (now - self.since if self.active else 0.0)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The block spends time (a request in flight, a wait before a retry)."""
        if not self.active:
            self.since = _now()
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            if not self.active:
                self.used += _now() - self.since


spent: ContextVar[dict[str, Spending] | None] = ContextVar("gateway_spent", default=None)
slots: ContextVar[tuple[asyncio.Semaphore, ...]] = ContextVar("gateway_slots", default=())
tasks: ContextVar[set[asyncio.Task[Any]] | None] = ContextVar("gateway_tasks", default=None)
single_attempt: ContextVar[bool] = ContextVar("gateway_single_attempt", default=False)


def adopt_current_task() -> None:
    """Count the current task as the operation's upstream work (see :data:`tasks`)."""
    table = tasks.get()
    task = asyncio.current_task()
    if table is not None and task is not None:
        table.add(task)
        task.add_done_callback(table.discard)


def end_tasks(table: set[asyncio.Task[Any]] | None) -> None:
    """Cancel the operation's upstream work that is still running."""
    for task in list(table or ()):
        if not task.done():
            task.cancel()


@contextlib.asynccontextmanager
async def upstream_slot() -> AsyncIterator[None]:
    """Hold one of each of :data:`slots` for the block; ``BrokerBusy`` when they cannot all be had
    before the deadline (nothing was sent)."""
    held: list[asyncio.Semaphore] = []
    try:
        for semaphore in slots.get():
            left = remaining(60.0)
            if not semaphore.locked() and left is not None and left > 0:
                await semaphore.acquire()  # free: taken at once, without wait_for's task and timer
                held.append(semaphore)
                continue
            try:
                await asyncio.wait_for(semaphore.acquire(), timeout=max(left if left is not None else 0.0, 0.0))
            except TimeoutError:
                from ..domain.errors import BrokerBusy

                raise BrokerBusy("too many of this operation's or this API key's requests are out; nothing was "
                                 "sent", retry_after=1.0) from None
            held.append(semaphore)
        yield
    finally:
        for semaphore in reversed(held):
            semaphore.release()


def spending(connection: str, limit: float) -> Spending | None:
    """The current operation's :class:`Spending` of ``connection`` (``None`` outside an operation)."""
    table = spent.get()
    if table is None:
        return None
    found = table.get(connection)
    if found is None:
        found = table[connection] = Spending(limit)
    return found


def _now() -> float:
    return asyncio.get_running_loop().time()


def remaining(default: float | None = None) -> float | None:
    """Seconds left before the deadline (may be ≤ 0); ``default`` when there is none."""
    end = deadline.get()
    if end is None:
        return default
    return end - _now()


@contextlib.contextmanager
def within(seconds: float | None) -> Iterator[float | None]:
    """Narrow the deadline to ``seconds`` from now for the block (never widen it); yields the
    resulting deadline (loop time) or ``None`` when there is none."""
    current = deadline.get()
    end = current if seconds is None else _now() + seconds
    if current is not None and end is not None:
        end = min(current, end)
    token = deadline.set(end)
    try:
        yield end
    finally:
        deadline.reset(token)


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Run the block's calls at :attr:`Priority.WRITE` (order placement, cancel, modify, ...)."""
    token = priority.set(Priority.WRITE)
    try:
        yield
    finally:
        priority.reset(token)


@contextlib.contextmanager
def accepting(seconds: float | None) -> Iterator[None]:
    """Reads in the block accept snapshots up to ``seconds`` old (``None``: the connection's default)."""
    token = max_age.set(seconds)
    try:
        yield
    finally:
        max_age.reset(token)


def fresh() -> contextlib.AbstractContextManager[None]:
    """Reads in the block go to the broker (or join a read already on its way)."""
    return accepting(0.0)
