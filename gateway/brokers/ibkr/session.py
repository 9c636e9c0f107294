"""What the adapter knows about its one Client Portal session, and the critical section around it.

The CP session has one selected account (ARCHITECTURE.md, "IBKR account switching is a critical
section"). :class:`SessionState` owns the connection's one ``asyncio.Lock``:

* switch-then-read pairs hold it; ``selected`` records the selected account so a switch is
  skipped when it is already right (``None`` = unknown: after an error, a logout, or before the
  ``iserver/accounts`` pre-flight reported it);
* order placement holds it from the first request to the last reply. When IBKR asks a question,
  the lock stays held as a **lease** (:meth:`grant`) bound to that question's reply id, until
  ``confirm_order`` answers it (:meth:`take`) or ``lease_seconds`` pass (:meth:`_expire` then
  releases it: the question is void and a late confirm answers ``OrderNotFound``). No other order
  request or account switch of this connection can interleave with a pending reply chain.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Lease", "SessionState"]


@dataclass(slots=True)
class Lease:
    """A pending reply question: ``token`` is the ConfirmationKey token, ``reply_id`` IBKR's id."""

    token: str
    reply_id: str
    context: Any
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class SessionState:
    lease_seconds: float = 30.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    selected: str | None = None
    preflight: bool = False
    primed: bool = False
    groups: frozenset[str] = frozenset()
    master: str | None = None
    lease: Lease | None = None
    switches: int = 0

    def forget(self) -> None:
        """The session was lost or replaced: nothing about it is known any more."""
        self.selected = None
        self.preflight = False
        self.primed = False

    def grant(self, reply_id: str, context: Any) -> Lease:
        """Keep the (held) lock for the question ``reply_id``; returns the lease with a fresh token."""
        lease = Lease(secrets.token_urlsafe(18), reply_id, context)
        lease.timer = asyncio.get_running_loop().call_later(self.lease_seconds, self._expire, lease)
        self.lease = lease
        return lease

    def take(self, token: str) -> Lease | None:
        """The lease for ``token``, now owned by the caller (who must release the lock or grant a
        new lease); ``None`` when no such question is pending."""
        lease = self.lease
        if lease is None or not secrets.compare_digest(lease.token, token):
            return None
        if lease.timer is not None:
            lease.timer.cancel()
        self.lease = None
        return lease

    def _expire(self, lease: Lease) -> None:
        if self.lease is lease:
            self.lease = None
            self.lock.release()
