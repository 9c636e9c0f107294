"""Idempotency of order placement: the same key and the same input give the same result and never a
second order; the same key with another input is an ``IdempotencyConflict``.

The key is scoped by principal, connection and mutation. With the Redis backend (``[events] backend =
"redis"``) the store is shared by every replica; its lock is renewed while a placement runs. The
client order id sent to the broker is derived from that scope and the key, so that a gateway that
restarted (or another replica) sends the same client order id: lemon (``idempotency``) and IBKR
(``cOID``) refuse the repeat themselves, and on ETNA (``ClientId``) and Alice Blue (``orderTag``) the
GraphQL layer looks the id up before sending (``gateway.graphql.order.mutations.place``). See
``docs/placement.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from .brokers import budget
from .domain.errors import BrokerBusy, BrokerNotAvailable, IdempotencyConflict, OperationFailed, OrderOutcomeUnknown
from .domain.keys import OrderKey
from .redisclient import blocking_client

log = logging.getLogger(__name__)

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
    result: Any  # the order key placed, or None: attempted, outcome not established
    at: float


class Claim:
    """The right to place for one idempotency key, held by one request at a time.

    ``result`` holds an earlier placement's order key (same input); ``attempted`` says an earlier
    request with the key sent (or may have sent) its order without establishing the outcome.
    :meth:`begin` marks this request's attempt before it sends; :meth:`record` stores its order key.
    """

    def __init__(self, result: Any = None, attempted: bool = False, mark: Any = None) -> None:
        self.result = result
        self.attempted = attempted
        self.recorded: Any = None
        self._mark = mark

    async def begin(self) -> None:
        """Record that this key's order is about to be sent (so a later request knows to look it up)."""
        if self._mark is not None:
            await self._mark()

    def record(self, result: Any) -> None:
        self.recorded = result


def _busy(client_order_id: str | None) -> OperationFailed:
    if client_order_id is None:
        return BrokerBusy("a request with this idempotency key is still running; nothing was sent", retry_after=1.0)
    return OrderOutcomeUnknown("a request with this idempotency key is still placing its order; ask again with "
                               "the same idempotencyKey for its outcome", client_order_id=client_order_id)


def _unreachable() -> OperationFailed:
    down = BrokerNotAvailable("the idempotency store (Redis) is unreachable; nothing was sent")
    down.sent = False
    return down


class IdempotencyStore:
    """In-process store of placements by (scope, key), kept ``ttl`` seconds (one replica).

    ``async with store.claim(scope, key, fp, cid) as claim`` serialises requests with the same key
    (a second one waits, within its deadline, and sees ``claim.result`` of the first), and raises
    ``IdempotencyConflict`` when ``fp`` differs from the first's. A request that cannot have the claim
    before its deadline gets ``OrderOutcomeUnknown`` with the client order id ``cid``.
    """

    durable = False

    def __init__(self, ttl: float = 24 * 3600) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    def _expire(self) -> None:
        now = time.monotonic()
        for k in [k for k, e in self._entries.items() if now - e.at > self.ttl]:
            del self._entries[k]

    @contextlib.asynccontextmanager
    async def claim(self, scope: str, key: str, fp: str, client_order_id: str | None = None) -> AsyncIterator[Claim]:
        self._expire()
        k = (scope, key)
        lock, users = self._locks.get(k, (asyncio.Lock(), 0))
        self._locks[k] = (lock, users + 1)
        try:
            left = budget.remaining()
            try:
                await asyncio.wait_for(lock.acquire(), timeout=None if left is None else max(left - 0.5, 0.01))
            except TimeoutError:
                raise _busy(client_order_id) from None
            try:
                entry = self._entries.get(k)
                if entry is not None and entry.fingerprint != fp:
                    raise IdempotencyConflict("this idempotency key was used with a different input")

                async def mark() -> None:
                    if k not in self._entries:
                        self._entries[k] = _Entry(fp, None, time.monotonic())

                claim = Claim(entry.result if entry else None, entry is not None and entry.result is None, mark)
                yield claim
                if claim.recorded is not None:
                    self._entries[k] = _Entry(fp, claim.recorded, time.monotonic())
            finally:
                lock.release()
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
    placement's fingerprint and order key (or the mark of an attempt), kept ``ttl`` seconds.

    The lock is taken for :attr:`LEASE` seconds and renewed every third of it while the placement
    runs, so a placement held up longer (queued behind IBKR's session, say) keeps it; a replica that
    dies stops renewing and its lock lapses. A request waits for the lock within its deadline (at most
    ``wait`` seconds). The client's pool is bounded and blocking (:func:`.redisclient.blocking_client`).
    """

    durable = True
    #: seconds the lock is taken for, renewed every third of it while its holder runs
    LEASE = 10.0

    def __init__(self, url: str, ttl: float = 24 * 3600, prefix: str = "gateway:idempotency:",
                 wait: float = 60.0, max_connections: int = 64) -> None:
        self.redis: Any = blocking_client(url, max_connections=max_connections)
        self.ttl = ttl
        self.prefix = prefix
        self.wait = wait

    async def _renew(self, lock: Any, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await lock.reacquire()
            except Exception as exc:  # noqa: BLE001 - a lost lock is logged; the placement goes on
                log.warning("idempotency lock %s could not be renewed: %s", lock.name, exc)
                return

    @contextlib.asynccontextmanager
    async def claim(self, scope: str, key: str, fp: str, client_order_id: str | None = None) -> AsyncIterator[Claim]:
        digest = hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()
        left = budget.remaining()
        wait = self.wait if left is None else max(min(self.wait, left - 0.5), 0.01)
        lease = self.LEASE
        lock = self.redis.lock(self.prefix + "lock:" + digest, timeout=lease, blocking_timeout=wait, sleep=0.05,
                               thread_local=False)
        try:
            acquired = await lock.acquire()
        except (OSError, RedisError) as exc:
            raise _unreachable() from exc
        if not acquired:
            raise _busy(client_order_id)
        renewal = asyncio.create_task(self._renew(lock, lease / 3))
        try:
            try:
                raw = await self.redis.get(self.prefix + digest)
            except (OSError, RedisError) as exc:
                raise _unreachable() from exc
            entry = json.loads(raw) if raw else None
            if entry is not None and entry["fp"] != fp:
                raise IdempotencyConflict("this idempotency key was used with a different input")
            order = entry.get("order") if entry else None

            async def mark() -> None:
                try:
                    await self.redis.set(self.prefix + digest, json.dumps({"fp": fp, "order": None}),
                                         ex=int(self.ttl), nx=True)
                except (OSError, RedisError) as exc:
                    raise _unreachable() from exc

            claim = Claim(OrderKey(*order) if order else None, entry is not None and not order, mark)
            yield claim
            if isinstance(claim.recorded, OrderKey):
                recorded = [claim.recorded.connection, claim.recorded.account_number, claim.recorded.broker_order_id]
                try:
                    await self.redis.set(self.prefix + digest, json.dumps({"fp": fp, "order": recorded}),
                                         ex=int(self.ttl))
                except (OSError, RedisError) as exc:  # the order is placed: answer it; a repeat finds it at the broker
                    log.warning("idempotency key's order %s could not be recorded: %s", recorded, exc)
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            with contextlib.suppress(Exception):
                await lock.release()

    async def close(self) -> None:
        await self.redis.aclose()
