"""Shared reads of one IBKR connection: concurrent callers share one upstream call, and slow-paced
reference data is kept for a stated time.

IBKR paces ``portfolio/accounts`` and ``portfolio/subaccounts`` at 1 request per 5 s, so fifty
concurrent GraphQL requests that each need the account list must not each ask for it. What is
kept is per connection (every principal allowed on the connection sees the same accounts) and
never outlives ``ttl`` seconds; a failed load is not kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Shared"]

T = TypeVar("T")


def _retrieve(task: asyncio.Future[object]) -> None:
    """Mark a failed load's exception as seen even when every caller was cancelled meanwhile."""
    if not task.cancelled():
        task.exception()


class Shared(Generic[T]):
    """One value loaded by ``load``: callers arriving while a load runs await that load; a
    successful value is served for ``ttl`` seconds (``0`` = only to the callers of the same load)."""

    def __init__(self, load: Callable[[], Awaitable[T]], ttl: float) -> None:
        self.load = load
        self.ttl = ttl
        self._task: asyncio.Future[T] | None = None
        self._value: tuple[float, T] | None = None

    def clear(self) -> None:
        self._value = None

    async def get(self) -> T:
        if self._value is not None and time.monotonic() - self._value[0] < self.ttl:
            return self._value[1]
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
            self._task.add_done_callback(_retrieve)
        return await asyncio.shield(self._task)

    async def _run(self) -> T:
        value = await self.load()
        self._value = (time.monotonic(), value)
        return value
