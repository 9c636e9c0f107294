"""Idempotency of order placement: the same key and the same input give the same result and never a
second order; the same key with another input is an ``IdempotencyConflict``.

The key is scoped by principal and connection. The client order id sent to the broker is derived
from that scope and the key, so that even a gateway that restarted (or another replica) sends the
same client order id and the broker's own idempotency (lemon ``idempotency``, IBKR ``cOID``, ETNA
``ClientId``) catches the repeat; the adapters reconcile by looking the order up by it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .domain.errors import IdempotencyConflict

__all__ = ["IdempotencyStore", "client_order_id", "fingerprint"]


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


class IdempotencyStore:
    """In-process store of placements by (scope, key), kept ``ttl`` seconds.

    ``async with store.claim(scope, key, fp) as slot`` serialises requests with the same key; a
    second one sees ``slot.result`` of the first, or ``IdempotencyConflict`` when ``fp`` differs.
    """

    def __init__(self, ttl: float = 24 * 3600) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _lock(self, k: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(k)
        if lock is None:
            lock = self._locks[k] = asyncio.Lock()
        return lock

    def _expire(self) -> None:
        now = time.monotonic()
        for k in [k for k, e in self._entries.items() if now - e.at > self.ttl]:
            del self._entries[k]
            lock = self._locks.get(k)
            if lock is not None and not lock.locked():
                del self._locks[k]

    def claim(self, scope: str, key: str, fp: str) -> _Claim:
        self._expire()
        return _Claim(self, (scope, key), fp)


class _Claim:
    def __init__(self, store: IdempotencyStore, k: tuple[str, str], fp: str) -> None:
        self.store, self.k, self.fp = store, k, fp
        self.result: Any = None

    async def __aenter__(self) -> _Claim:
        await self.store._lock(self.k).acquire()
        entry = self.store._entries.get(self.k)
        if entry is not None:
            if entry.fingerprint != self.fp:
                self.store._lock(self.k).release()
                raise IdempotencyConflict("this idempotency key was used with a different input")
            self.result = entry.result
        return self

    def record(self, result: Any) -> None:
        self.store._entries[self.k] = _Entry(self.fp, result, time.monotonic())

    async def __aexit__(self, *exc: object) -> None:
        self.store._lock(self.k).release()
