"""The Alice Blue venue's own state beside the engine: users and sessions, listings, the day books.

* Users log in with ``checkSum`` = SHA-256 hex of ``userId + authCode + apiSecret``; a session is a
  JWT-shaped opaque token valid ``session_ttl`` seconds (``expire_sessions`` ends all of them, to
  test re-login). The auth code is reusable in the sandbox (the real SSO code is short-lived).
* A listing is an instrument on NSE or BSE with its Alice Blue ``instrumentId`` (the catalogue's
  ``ids["nse"]`` / ``ids["bse"]``), trading symbol (``ACC-EQ`` on NSE, ``ACC`` on BSE), lot and tick
  size.
* Engine positions are keyed ``(instrument, product)`` with the order-side product words
  (``LONGTERM``, ``INTRADAY``, ``MTF``). A delivery position's ``extra["holding"]`` is its
  start-of-day DEMAT holding (what ``holdings/{CNC|MTF}`` shows all day); ``extra["overnight"]`` a
  carried-forward position line. :class:`DayBook` holds the day's buys and sells per
  ``(account, exchange, instrument, product)``: fills, square-offs and conversions move it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ..engine import Engine, SimAccount, SimFill, SimOrder
from ..instruments import SimInstrument
from .wire import IST, order_item

__all__ = ["IST", "AliceState", "DayBook", "Listing", "User"]

@dataclass(slots=True)
class User:
    user_id: str
    auth_code: str
    api_secret: str
    name: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256((self.user_id + self.auth_code + self.api_secret).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Listing:
    exchange: str
    instrument_id: str
    trading_symbol: str
    instrument: SimInstrument
    tick_size: Decimal
    lot_size: int = 1


@dataclass(slots=True)
class DayLine:
    """One line of the day's position book."""

    buy_qty: int = 0
    buy_value: Decimal = Decimal(0)
    sell_qty: int = 0
    sell_value: Decimal = Decimal(0)

    def add(self, side: str, qty: int, price: Decimal) -> None:
        if side == "buy":
            self.buy_qty += qty
            self.buy_value += price * qty
        else:
            self.sell_qty += qty
            self.sell_value += price * qty

    @property
    def net(self) -> int:
        return self.buy_qty - self.sell_qty


@dataclass(slots=True)
class DayBook:
    lines: dict[tuple[str, str, str, str], DayLine] = field(default_factory=dict)

    def line(self, account: str, exchange: str, key: str, product: str) -> DayLine:
        k = (account, exchange, key, product)
        if k not in self.lines:
            self.lines[k] = DayLine()
        return self.lines[k]


class AliceState:
    """Everything the Alice Blue wire needs beside the engine; see the module docstring."""

    def __init__(self, engine: Engine, session_ttl: float = 8 * 3600) -> None:
        self.engine = engine
        self.session_ttl = session_ttl
        self.users: dict[str, User] = {}
        self.sessions: dict[str, tuple[str, float]] = {}
        self.day = DayBook()
        self.history: dict[str, list[dict[str, object]]] = {}
        self.opening_cash: dict[str, Decimal] = {}
        self.listings: dict[tuple[str, str], Listing] = {}
        self._order_seq = itertools.count(2697)
        self._exchange_seq = itertools.count(67911873)
        self._trade_seq = itertools.count(207745115)
        for ins in engine.instruments.values():
            tick = ins.tick_size
            if "nse" in ins.ids:
                self.listings[("NSE", ins.ids["nse"])] = Listing("NSE", ins.ids["nse"], f"{ins.symbol}-EQ", ins, tick)
            if "bse" in ins.ids:
                self.listings[("BSE", ins.ids["bse"])] = Listing("BSE", ins.ids["bse"], ins.symbol, ins, tick)
        engine.subscribe(self._on_order)

    # -- sessions -------------------------------------------------------------------------
    def add_user(self, user: User, cash: Decimal) -> None:
        self.users[user.user_id] = user
        self.opening_cash[user.user_id] = cash
        self.engine.add_account(SimAccount(user.user_id, "INR", cash, name=user.name))

    def login(self, checksum: str) -> tuple[str, str] | None:
        """``(clientId, userSession)`` for a right checksum, else ``None``."""
        for user in self.users.values():
            if secrets.compare_digest(user.checksum, checksum):
                exp = time.time() + self.session_ttl
                header = _b64({"alg": "RS256", "typ": "JWT"})
                payload = _b64({"exp": int(exp), "sub": user.user_id, "jti": secrets.token_hex(8)})
                token = f"{header}.{payload}.{secrets.token_urlsafe(24)}"
                self.sessions[token] = (user.user_id, exp)
                return user.user_id, token
        return None

    def client_for(self, authorization: str | None) -> str | None:
        """The clientId a ``Bearer`` header belongs to, ``None`` when missing, unknown or expired."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        entry = self.sessions.get(authorization[len("Bearer "):].strip())
        if entry is None or entry[1] < time.time():
            return None
        return entry[0]

    def expire_sessions(self) -> int:
        n = len(self.sessions)
        self.sessions.clear()
        return n

    # -- ids and listings -----------------------------------------------------------------
    def new_order_id(self) -> str:
        return f"{datetime.now(IST):%y%m%d}{next(self._order_seq):09d}"

    def new_exchange_order_id(self) -> str:
        return f"11000000{next(self._exchange_seq):08d}"

    def listing(self, exchange: str, instrument_id: str) -> Listing | None:
        return self.listings.get((exchange, instrument_id))

    def listing_by_symbol(self, exchange: str, trading_symbol: str) -> Listing | None:
        for listing in self.listings.values():
            if listing.exchange == exchange and listing.trading_symbol.upper() == trading_symbol.upper():
                return listing
        return None

    # -- fills into the day book ----------------------------------------------------------
    def _on_order(self, order: SimOrder) -> None:
        seen = int(order.extra.get("fills_seen", 0))
        new: list[SimFill] = order.fills[seen:]
        order.extra["fills_seen"] = len(order.fills)
        line = self.day.line(order.account_id, str(order.extra.get("exchange", "NSE")), order.instrument.key,
                             order.product)
        for fill in new:
            line.add(order.side, int(fill.quantity), fill.price)
            fill_id = str(next(self._trade_seq))
            order.extra.setdefault("trade_ids", []).append(fill_id)
        self.record_history(order)

    def record_history(self, order: SimOrder) -> None:
        """Append a history row when the order's wire status or fill changes (latest first on read)."""
        item = order_item(self, order)
        rows = self.history.setdefault(order.id, [])
        sig = (item["orderStatus"], item["filledQuantity"], item["quantity"], item["price"])
        if rows and rows[-1].get("_sig") == sig:
            return
        rows.append({**item, "_sig": sig})

    def now_text(self) -> str:
        return f"{datetime.now(IST):%Y-%m-%d %H:%M:%S}"


def _b64(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")
