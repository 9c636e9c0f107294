"""Redis clients with a bounded pool that waits (issue #11).

redis-py's default pool raises ``MaxConnectionsError`` once its connections are all in use; under a
burst of placements (150–200 at once, each holding an idempotency lock and its renewals) that turned
into ``INTERNAL`` answers for orders never sent. :func:`blocking_client` uses redis-py's
``BlockingConnectionPool`` instead: a burst waits up to ``timeout`` seconds for a free connection.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_POOL_TIMEOUT", "blocking_client"]

#: connections one client keeps at most
DEFAULT_MAX_CONNECTIONS = 64
#: seconds a command waits for a free connection before redis-py raises ``ConnectionError``
DEFAULT_POOL_TIMEOUT = 20.0


def blocking_client(url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                    timeout: float = DEFAULT_POOL_TIMEOUT) -> Any:
    """A ``redis.asyncio.Redis`` for ``url`` (``redis://host:port/db``) on a
    ``BlockingConnectionPool`` of ``max_connections`` that waits ``timeout`` seconds for a connection."""
    import redis.asyncio as redis

    pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout)
    return redis.Redis(connection_pool=pool)
