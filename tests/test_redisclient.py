"""The gateway's Redis pool (``gateway.redisclient``) against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.redisclient import blocking_client


async def test_a_cancelled_wait_for_a_connection_does_not_strand_the_next_waiter(redis_url: str) -> None:
    """Two connections, both in use; two commands wait. One is released and the waiter it wakes is
    cancelled before it runs (a lock renewal stopped, say): the other waiter must get the free
    connection. With redis-py's plain ``BlockingConnectionPool`` on CPython < 3.13 the wake-up is
    lost and the second waiter fails after the pool's timeout with "No connection available"."""
    client = blocking_client(redis_url, max_connections=2, timeout=2.0)
    pool = client.connection_pool
    try:
        held = [await pool.get_connection(), await pool.get_connection()]
        first = asyncio.create_task(pool.get_connection())
        await asyncio.sleep(0.05)
        second = asyncio.create_task(pool.get_connection())
        await asyncio.sleep(0.05)
        await pool.release(held.pop())  # wakes `first`
        first.cancel()  # ... which is cancelled before it runs
        try:
            connection = await second
        except RedisConnectionError as exc:
            pytest.fail(f"the second waiter was stranded beside a free connection: {exc}")
        await pool.release(connection)
        with pytest.raises(asyncio.CancelledError):
            await first
        # the pool still works as a whole: a command goes through
        assert await client.ping() is True
    finally:
        await client.aclose()
