"""The session scheduler on its own (issue #9): priorities, fairness between API keys, deadlines,
endpoint pacing that holds up nobody else, reserved permits, the exclusive section, and pacing windows
shared through a real redis-server by two schedulers as two replicas would."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from gateway.brokers import budget
from gateway.brokers.pacing import MemoryWindows, PacingRules, RedisWindows, Window
from gateway.brokers.scheduler import SessionScheduler
from gateway.domain.errors import BrokerBusy

GET = ("GET", "things")
SLOW = ("GET", "slow")


def _rules(limit: int = 1, seconds: float = 0.05, slow: float | None = None) -> PacingRules:
    endpoints = {("GET", "slow"): (Window(1, slow),)} if slow else {}
    return PacingRules((Window(limit, seconds),), endpoints)


async def _call(scheduler: SessionScheduler, order: list[str], name: str, call: tuple[str, str] = GET, *,
                prio: budget.Priority = budget.Priority.READ, who: str = "", within: float | None = 10.0) -> None:
    budget.priority.set(prio)
    budget.caller.set(who)
    with budget.within(within):
        async with scheduler.call(*call):
            order.append(name)


async def test_scheduler_admits_a_write_before_the_reads_queued_ahead_of_it() -> None:
    scheduler = SessionScheduler("t", _rules())
    order: list[str] = []
    reads = [asyncio.create_task(_call(scheduler, order, f"read{i}")) for i in range(12)]
    await asyncio.sleep(0.12)  # two or three reads are through; the rest wait for the window
    write = asyncio.create_task(_call(scheduler, order, "write", prio=budget.Priority.WRITE))
    await asyncio.gather(write, *reads)
    assert 1 <= order.index("write") <= 5, order  # next after the reads already admitted
    await scheduler.close()


async def test_scheduler_shares_a_connection_fairly_between_api_keys() -> None:
    scheduler = SessionScheduler("t", _rules())
    order: list[str] = []
    flood = [asyncio.create_task(_call(scheduler, order, f"a{i}", who="key-a")) for i in range(20)]
    await asyncio.sleep(0.01)
    small = asyncio.create_task(_call(scheduler, order, "b", who="key-b"))
    await small
    assert order.index("b") <= 3, order  # not behind key A's twenty
    await asyncio.gather(*flood)
    await scheduler.close()


async def test_scheduler_ends_a_wait_at_the_deadline_with_broker_busy_and_nothing_sent() -> None:
    scheduler = SessionScheduler("t", _rules(limit=1, seconds=5.0))
    order: list[str] = []
    await _call(scheduler, order, "first")
    started = asyncio.get_running_loop().time()
    with pytest.raises(BrokerBusy) as refused:
        await _call(scheduler, order, "late", within=0.2)
    waited = asyncio.get_running_loop().time() - started
    assert 0.15 <= waited < 1.0 and order == ["first"]
    assert refused.value.retry_after is not None and refused.value.retry_after >= 1
    assert not scheduler._waiters  # nothing left queued for it
    await scheduler.close()


async def test_scheduler_lets_calls_past_one_that_waits_for_its_own_endpoint() -> None:
    scheduler = SessionScheduler("t", _rules(limit=100, seconds=1.0, slow=2.0))
    order: list[str] = []
    await _call(scheduler, order, "slow1", SLOW)
    slow = asyncio.create_task(_call(scheduler, order, "slow2", SLOW))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(_call(scheduler, order, "fast"), 0.5)  # not behind slow2's 2 s
    assert order == ["slow1", "fast"]
    slow.cancel()
    await asyncio.gather(slow, return_exceptions=True)
    await scheduler.close()


async def test_scheduler_gives_back_reserved_permits_that_were_not_used() -> None:
    windows = MemoryWindows(_rules(limit=2, seconds=5.0))
    scheduler = SessionScheduler("t", windows.rules, windows)
    order: list[str] = []
    with budget.within(1.0):
        async with scheduler.permits([GET, GET]):
            async with scheduler.call(*GET):
                order.append("used")
    # one of the two was used (and stamped), the other given back: one more call fits the window
    await asyncio.wait_for(_call(scheduler, order, "next"), 0.5)
    with pytest.raises(BrokerBusy):
        await _call(scheduler, order, "over", within=0.1)
    assert order == ["used", "next"]
    await scheduler.close()


async def test_scheduler_exclusive_section_drains_calls_in_flight_and_holds_new_ones() -> None:
    scheduler = SessionScheduler("t", PacingRules())
    events: list[str] = []
    release = asyncio.Event()

    async def slow_call() -> None:
        async with scheduler.call(*GET):
            events.append("slow started")
            await release.wait()
            events.append("slow done")

    async def exclusive() -> None:
        async with scheduler.exclusive():
            events.append("exclusive in")
            async with scheduler.call(*GET):  # its own calls go through
                events.append("exclusive call")
            await asyncio.sleep(0.05)
            events.append("exclusive out")

    async def later_call() -> None:
        async with scheduler.call(*GET):
            events.append("later call")

    first = asyncio.create_task(slow_call())
    await asyncio.sleep(0.01)
    owner = asyncio.create_task(exclusive())
    await asyncio.sleep(0.01)
    other = asyncio.create_task(later_call())
    await asyncio.sleep(0.05)
    assert events == ["slow started"]  # the section waits for the call in flight; the new call waits too
    release.set()
    await asyncio.gather(first, owner, other)
    assert events == ["slow started", "slow done", "exclusive in", "exclusive call", "exclusive out", "later call"]
    await scheduler.close()


async def test_pacing_windows_in_redis_hold_for_two_replicas_together(redis_url: str) -> None:
    import redis.asyncio as redis

    client = redis.from_url(redis_url)
    rules = PacingRules((Window(5, 0.5),))
    name = f"test-{next(_names)}"
    replicas = [SessionScheduler(f"r{i}", rules, RedisWindows(rules, client, name)) for i in range(2)]
    sent: list[float] = []
    loop = asyncio.get_running_loop()

    async def one(scheduler: SessionScheduler) -> None:
        with budget.within(10.0):
            async with scheduler.call(*GET):
                sent.append(loop.time())

    started = loop.time()
    await asyncio.gather(*(one(replicas[i % 2]) for i in range(20)))
    assert loop.time() - started >= 1.4  # 20 calls at 5 per 0.5 s, whichever replica sends them
    sent.sort()
    assert all(b - a >= 0.45 for a, b in zip(sent, sent[5:], strict=False)), sent  # never 6 in one window
    for scheduler in replicas:
        await scheduler.close()
    await client.aclose()


_names = itertools.count()


async def test_a_call_cancelled_on_its_way_still_stamps_its_ticket() -> None:
    """The ticket of a request that was sent counts from when its answer came (or the caller gave up),
    even when the caller is cancelled while the request is out."""
    now = [100.0]
    windows = MemoryWindows(_rules(limit=5, seconds=10.0), clock=lambda: now[0])
    scheduler = SessionScheduler("t", windows.rules, windows)
    on_its_way = asyncio.Event()

    async def call() -> None:
        async with scheduler.call(*GET):
            on_its_way.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(call())
    await on_its_way.wait()
    now[0] = 107.0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert {at for log in windows._logs.values() for at, _ in log} == {107.0}  # pending hold replaced by the stamp
    await scheduler.close()
