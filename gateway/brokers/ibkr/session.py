"""What the adapter knows about its one Client Portal session.

The CP session has one selected account (ARCHITECTURE.md, "IBKR account switching is a critical
section"). The selection lives in the connection's :class:`~..section.SessionSection` (shared by the
replicas through Redis when configured); a switch and the calls that need that selection run inside
it, their pacing permits obtained before it is entered. An order request and every automatic reply
it gets also run inside it, alone on the session (``scheduler.exclusive()``: IBKR voids a reply chain
as soon as another request reaches the session). The section is **not** held while the user thinks: a
question becomes a pending confirmation (:mod:`.confirmations`) that remembers the request itself.
Confirming it answers the question directly when nothing has reached IBKR since (``seq`` unchanged,
same process), else sends the same request again (same ``cOID``) and answers the questions the user
has already accepted by itself; a question the user has not seen yet comes back as a new confirmation.

:class:`SessionState` keeps what this process learned of the session: whether the ``iserver/accounts``
pre-flight ran, whether the first (empty) orders snapshot after a login was seen, the allocation
groups and the advisor master, and ``seq``, the count of answers the session gave (every call, on
any task), which tells a confirmation whether its reply id may still be alive.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SessionState"]


@dataclass(slots=True)
class SessionState:
    preflight: bool = False
    primed: bool = False
    groups: frozenset[str] = frozenset()
    master: str | None = None
    switches: int = 0
    seq: int = 0

    def forget(self) -> None:
        """The session was lost or replaced: nothing about it is known any more."""
        self.preflight = False
        self.primed = False
