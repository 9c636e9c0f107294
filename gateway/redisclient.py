"""Redis clients with a bounded pool that waits (issue #11).

redis-py's default pool raises ``MaxConnectionsError`` once its connections are all in use; under a
burst of placements (150–200 at once, each holding an idempotency lock and its renewals, then
publishing its order's event) that turned into ``INTERNAL`` answers for orders never sent and events
not published. :func:`blocking_client` uses redis-py's ``BlockingConnectionPool`` instead: a burst
waits up to ``timeout`` seconds for a free connection. Every Redis client of the gateway (idempotency
store, event bus, watcher state, broker sessions) is made here.

The pool is :class:`WakeSafePool`: on CPython before 3.13, ``asyncio.Condition`` loses a
``notify()`` whose waiter is cancelled before it runs (python/cpython#112202). redis-py's blocking
pool waits on such a condition, so a cancelled wait (a lock renewal stopped, a timeout) left a free
connection unused while the next waiter slept until the pool's ``timeout`` (20 s) and then failed
with "No connection available".
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis

__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_POOL_TIMEOUT", "WakeSafePool", "blocking_client"]

#: connections one client keeps at most
DEFAULT_MAX_CONNECTIONS = 64
#: seconds a command waits for a free connection before redis-py raises ``ConnectionError``
DEFAULT_POOL_TIMEOUT = 20.0


class WakeSafePool(redis.BlockingConnectionPool):
    """redis-py's ``BlockingConnectionPool`` whose waits pass a wake-up on when they end without a
    connection (cancelled, timed out), so that no other waiter sleeps beside a free connection."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)
        except BaseException:
            # this waiter may have consumed a notify(): hand it to the next one (a spurious wake-up
            # is harmless, the waiters check for a free connection again)
            async with self._condition:
                self._condition.notify()
            raise


def blocking_client(url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                    timeout: float = DEFAULT_POOL_TIMEOUT) -> Any:
    """A ``redis.asyncio.Redis`` for ``url`` (``redis://host:port/db``) on a :class:`WakeSafePool`
    of ``max_connections`` that waits ``timeout`` seconds for a connection."""
    pool = WakeSafePool.from_url(url, max_connections=max_connections, timeout=timeout)
    return redis.Redis(connection_pool=pool)
