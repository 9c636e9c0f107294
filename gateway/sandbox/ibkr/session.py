"""The one Client Portal brokerage session the IBKR sandbox serves (the CP gateway has one).

State that IBKR keeps per session and that the adapter must cope with:

* ``authenticated``: a logged-out session answers 401 ``{"error": "not authenticated", ...}``
  everywhere except ``iserver/auth/status``, ``tickle`` and ``iserver/auth/ssodh/init``.
* ``selected``: the session-global selected account (``POST iserver/account``); live orders and
  order status answer for it only.
* ``preflight``: whether ``GET iserver/accounts`` was called since login (order reads need it).
* ``warm``: the first ``GET iserver/account/orders`` after login (and every ``force=true``
  call) answers ``{"orders": [], "snapshot": false}``.
* ``chains``: pending reply questions (``iserver/reply/{id}``); any other request (see the
  venue's gate) drops them.
* ``suppressed``: message ids suppressed through ``iserver/questions/suppress``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .seed import MASTER

__all__ = ["Chain", "Session"]


@dataclass(slots=True)
class Chain:
    """A pending order request: ``questions`` still to ask (message id, text); ``complete`` makes
    the order (or the modification) once every question has been confirmed."""

    questions: list[tuple[str, str]]
    complete: Callable[[], Any]


@dataclass(slots=True)
class Session:
    authenticated: bool = True
    gateway_login: bool = True
    selected: str = MASTER
    preflight: bool = False
    warm: bool = False
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))
    chains: dict[str, Chain] = field(default_factory=dict)
    suppressed: set[str] = field(default_factory=set)
    switches: int = 0

    def login(self) -> None:
        """A fresh brokerage session: selection back to the master, pre-flight and warm-up again."""
        self.authenticated = True
        self.gateway_login = True
        self.selected = MASTER
        self.preflight = False
        self.warm = False
        self.session_id = secrets.token_hex(16)
        self.chains.clear()

    def logout(self, gateway_login: bool = False) -> None:
        self.authenticated = False
        self.gateway_login = gateway_login
        self.chains.clear()

    def drop_chains(self) -> None:
        """Another request reached the session: pending questions are void."""
        self.chains.clear()
