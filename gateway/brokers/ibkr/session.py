"""What the adapter knows about its one Client Portal session, and the critical section around it.

The CP session has one selected account (ARCHITECTURE.md, "IBKR account switching is a critical
section"). :class:`SessionState` owns the connection's one ``asyncio.Lock``:

* switch-then-read pairs hold it; ``selected`` records the selected account so a switch is
  skipped when it is already right (``None`` = unknown: after an error, a logout, or before the
  ``iserver/accounts`` pre-flight reported it);
* an order request and every reply it gets hold it, from the first request to the answer that
  either accepts the order or asks the user a question. The lock is **not** held while the user
  thinks: IBKR voids a pending question as soon as any other request reaches the session, so a
  question becomes a :class:`PendingConfirmation` that remembers the request itself. Confirming it
  answers the question directly when nothing has reached IBKR since (``seq`` unchanged), else sends
  the same request again (same ``cOID``) and answers the questions the user has already accepted
  by itself; a question the user has not seen yet comes back as a new confirmation.

``seq`` counts the answers the session has given (every call, on any task), which is how a
confirmation tells whether its reply id may still be alive.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OrderSpec", "PendingConfirmation", "SessionState"]


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """An order request as sent: ``target`` is the path account (an account or an allocation
    group), ``account`` the account the order is keyed under (the master for a group order),
    ``order_id`` set for a modification."""

    account: str
    target: str
    client_order_id: str | None
    body: dict[str, Any]
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class PendingConfirmation:
    """A question waiting for the user: IBKR's ``reply_id`` for it, the message ids it asks
    (``asked``) and those the user accepted before (``accepted``)."""

    token: str
    spec: OrderSpec
    reply_id: str
    asked: frozenset[str]
    accepted: frozenset[str]
    seq: int
    expires: float


@dataclass(slots=True)
class SessionState:
    confirmation_ttl: float = 120.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    selected: str | None = None
    preflight: bool = False
    primed: bool = False
    groups: frozenset[str] = frozenset()
    master: str | None = None
    switches: int = 0
    seq: int = 0
    pending: dict[str, PendingConfirmation] = field(default_factory=dict)

    def forget(self) -> None:
        """The session was lost or replaced: nothing about it is known any more."""
        self.selected = None
        self.preflight = False
        self.primed = False

    def ask(self, spec: OrderSpec, reply_id: str, asked: tuple[str, ...], accepted: frozenset[str]
            ) -> PendingConfirmation:
        """Remember a question for the user; returns it with a fresh token."""
        now = time.monotonic()
        for token in [t for t, p in self.pending.items() if p.expires <= now]:
            del self.pending[token]
        pending = PendingConfirmation(secrets.token_urlsafe(18), spec, reply_id, frozenset(asked), accepted,
                                      self.seq, now + self.confirmation_ttl)
        self.pending[pending.token] = pending
        return pending

    def take(self, token: str) -> PendingConfirmation | None:
        """The question for ``token``, removed (a confirmation is answered once); ``None`` when
        unknown or expired."""
        pending = self.pending.pop(token, None)
        if pending is None or pending.expires <= time.monotonic():
            return None
        return pending
