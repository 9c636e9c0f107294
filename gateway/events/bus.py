"""The event bus: one ordered stream of order-status events per gateway deployment.

* :class:`MemoryBus` (the default) keeps the stream in process: one replica.
* :class:`RedisBus` keeps it in a Redis Stream (``XADD`` / ``XREAD`` / ``XRANGE``), so every replica
  delivers the same events with the same ids, and a client resumes on any replica.

Both fan out to local subscribers through one :class:`Hub` (one reader per process, whatever the
number of subscribers). Ids have the Redis stream form ``<ms>-<seq>`` and grow monotonically, so a
resume token orders against every other. ``replay(after)`` returns what followed ``after`` within the
retention window and whether events were lost beyond it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .after_response import after_response
from .codec import OrderEvent, decode_event, encode_event

__all__ = ["EventBus", "Hub", "MemoryBus", "RedisBus", "Subscriber", "parse_id"]

log = logging.getLogger(__name__)


def parse_id(event_id: str) -> tuple[int, int]:
    """``"<ms>-<seq>"`` → ``(ms, seq)``; ``ValueError`` when malformed."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False, slots=True)
class Subscriber:
    """One local consumer: a bounded queue and the filter of what it wants."""

    accepts: Callable[[OrderEvent], bool]
    queue: asyncio.Queue[OrderEvent | None]
    overflowed: bool = False


class Hub:
    """Local fan-out of bus events to subscribers; slow subscribers are cut off, never the others."""

    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()

    def add(self, accepts: Callable[[OrderEvent], bool]) -> Subscriber:
        sub = Subscriber(accepts, asyncio.Queue(self.queue_size))
        self.subscribers.add(sub)
        return sub

    def remove(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def dispatch(self, event: OrderEvent) -> None:
        for sub in list(self.subscribers):
            if not sub.accepts(event):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.overflowed = True
                self.subscribers.discard(sub)
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(None)


class EventBus:
    """Base: ``publish`` appends to the stream; ``replay`` reads from it; ``hub`` delivers live."""

    def __init__(self) -> None:
        self.hub = Hub()

    async def start(self) -> None:
        """Start reading the shared stream (Redis); nothing for the memory bus."""

    async def close(self) -> None:
        """Stop reading and release connections."""

    async def publish(self, event: OrderEvent) -> str:
        raise NotImplementedError

    async def replay(self, after: str) -> tuple[list[OrderEvent], bool]:
        """Events after ``after`` (oldest first) and whether some were lost to retention."""
        raise NotImplementedError


class MemoryBus(EventBus):
    """In-process stream, ``retention`` events long."""

    def __init__(self, retention: int = 10_000) -> None:
        super().__init__()
        self.events: deque[OrderEvent] = deque()
        self.retention = retention
        self.trimmed_upto: tuple[int, int] = (0, 0)
        self._last: tuple[int, int] = (0, 0)

    def _next_id(self) -> str:
        ms = int(time.time() * 1000)
        last_ms, last_seq = self._last
        self._last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        return f"{self._last[0]}-{self._last[1]}"

    async def publish(self, event: OrderEvent) -> str:
        event = event.with_id(self._next_id())
        self.events.append(event)
        while len(self.events) > self.retention:
            self.trimmed_upto = parse_id(self.events.popleft().event_id)
        after_response(lambda: self.hub.dispatch(event))  # a mutation's own answer goes out first
        return event.event_id

    async def replay(self, after: str) -> tuple[list[OrderEvent], bool]:
        mark = parse_id(after)
        missed = self.trimmed_upto > mark
        return [e for e in self.events if parse_id(e.event_id) > mark], missed


class RedisBus(EventBus):
    """A Redis Stream ``key`` trimmed to about ``retention`` entries; one reader task per process."""

    def __init__(self, url: str, key: str = "gateway:order-events", retention: int = 10_000) -> None:
        super().__init__()
        from ..redisclient import blocking_client

        self.redis: Any = blocking_client(url)
        self.key = key
        self.retention = retention
        self._reader: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="redis-bus-reader")
        await asyncio.wait_for(self._started.wait(), timeout=10)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.redis.aclose()

    async def publish(self, event: OrderEvent) -> str:
        raw = await self.redis.xadd(self.key, {"e": encode_event(event)}, maxlen=self.retention, approximate=True)
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def replay(self, after: str) -> tuple[list[OrderEvent], bool]:
        parse_id(after)
        entries = await self.redis.xrange(self.key, min=f"({after}", max="+")
        info = await self.redis.xinfo_stream(self.key) if await self.redis.exists(self.key) else {}
        deleted = info.get("max-deleted-entry-id") or b"0-0"
        deleted = deleted.decode() if isinstance(deleted, bytes) else str(deleted)
        missed = parse_id(deleted) > parse_id(after)
        return [decode_event(fields[b"e"], _id(eid)) for eid, fields in entries], missed

    async def _read_forever(self) -> None:
        last = "$"
        while True:
            try:
                if last == "$":
                    latest = await self.redis.xrevrange(self.key, count=1)
                    last = _id(latest[0][0]) if latest else "0-0"
                    self._started.set()
                result = await self.redis.xread({self.key: last}, block=1000, count=500)
                for _stream, entries in result or []:
                    for eid, fields in entries:
                        last = _id(eid)
                        self.hub.dispatch(decode_event(fields[b"e"], last))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarts: keep the position and try again
                log.warning("redis bus read failed: %s", exc)
                await asyncio.sleep(1.0)


def _id(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
