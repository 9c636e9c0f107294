"""Idempotency of order placement: the same key and the same input give the same result and never a
second order; the same key with another input is an ``IdempotencyConflict``.

The key is scoped by principal and connection. With the Redis backend (``[events] backend = "redis"``)
the store is shared by every replica. The client order id sent to the broker is derived
from that scope and the key, so that even a gateway that restarted (or another replica) sends the
same client order id and the broker's own idempotency (lemon ``idempotency``, IBKR ``cOID``, ETNA
``ClientId``) catches the repeat; the adapters reconcile by looking the order up by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from .domain.errors import IdempotencyConflict, OperationFailed
from .domain.keys import OrderKey

__all__ = ["Claim", "IdempotencyStore", "RedisIdempotencyStore", "client_order_id", "fingerprint"]


def client_order_id(scope: str, key: str | None) -> str:
    """``gw`` + 30 hex digits: derived from (scope, key) when a key is given, else random."""
    if key is None:
        return "gw" + uuid.uuid4().hex[:30]
    return "gw" + hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()[:30]


def fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    result: Any
    at: float


class Claim:
    """The right to place for one idempotency key: ``result`` holds an earlier placement's order key
    (same input), and :meth:`record` stores this one's."""

    def __init__(self, result: Any = None) -> None:
        self.result = result
        self.recorded: Any = None

    def record(self, result: Any) -> None:
        self.recorded = result


class IdempotencyStore:
    """In-process store of placements by (scope, key), kept ``ttl`` seconds (one replica).

    ``async with store.claim(scope, key, fp) as claim`` serialises requests with the same key; a
    second one sees ``claim.result`` of the first, or ``IdempotencyConflict`` when ``fp`` differs.
    """

    def __init__(self, ttl: float = 24 * 3600) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    def _expire(self) -> None:
        now = time.monotonic()
        for k in [k for k, e in self._entries.items() if now - e.at > self.ttl]:
            del self._entries[k]

    @contextlib.asynccontextmanager
    async def claim(self, scope: str, key: str, fp: str) -> AsyncIterator[Claim]:
        self._expire()
        k = (scope, key)
        lock, users = self._locks.get(k, (asyncio.Lock(), 0))
        self._locks[k] = (lock, users + 1)
        try:
            async with lock:
                entry = self._entries.get(k)
                if entry is not None and entry.fingerprint != fp:
                    raise IdempotencyConflict("this idempotency key was used with a different input")
                claim = Claim(entry.result if entry else None)
                yield claim
                if claim.recorded is not None:
                    self._entries[k] = _Entry(fp, claim.recorded, time.monotonic())
        finally:
            lock, users = self._locks[k]
            if users <= 1:
                del self._locks[k]
            else:
                self._locks[k] = (lock, users - 1)

    async def close(self) -> None:
        return None


class RedisIdempotencyStore:
    """The same, shared by every replica through Redis: a lock per key (redis-py ``Lock``) and the
    placement's fingerprint and order key, kept ``ttl`` seconds."""

    def __init__(self, url: str, ttl: float = 24 * 3600, prefix: str = "gateway:idempotency:",
                 wait: float = 60.0) -> None:
        import redis.asyncio as redis

        self.redis: Any = redis.from_url(url)
        self.ttl = ttl
        self.prefix = prefix
        self.wait = wait

    @contextlib.asynccontextmanager
    async def claim(self, scope: str, key: str, fp: str) -> AsyncIterator[Claim]:
        digest = hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()
        lock = self.redis.lock(self.prefix + "lock:" + digest, timeout=self.wait, blocking_timeout=self.wait)
        if not await lock.acquire():
            raise OperationFailed("a request with this idempotency key is still running; try again")
        try:
            raw = await self.redis.get(self.prefix + digest)
            entry = json.loads(raw) if raw else None
            if entry is not None and entry["fp"] != fp:
                raise IdempotencyConflict("this idempotency key was used with a different input")
            claim = Claim(OrderKey(*entry["order"]) if entry else None)
            yield claim
            if isinstance(claim.recorded, OrderKey):
                order = [claim.recorded.connection, claim.recorded.account_number, claim.recorded.broker_order_id]
                await self.redis.set(self.prefix + digest, json.dumps({"fp": fp, "order": order}), ex=int(self.ttl))
        finally:
            with contextlib.suppress(Exception):
                await lock.release()

    async def close(self) -> None:
        await self.redis.aclose()
