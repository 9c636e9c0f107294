"""The broker-neutral paper trading engine behind every sandbox venue.

One :class:`Engine` is one paper broker: accounts with cash and positions, a price per instrument,
and orders that move through a neutral life cycle::

    INACTIVE ──activate──► PENDING_NEW ──(ack_delay)──► WORKING ──(fill_delay, price crosses)──►
        PARTIALLY_FILLED ──► FILLED
    WORKING / PENDING_NEW / PARTIALLY_FILLED ──cancel──► CANCEL_PENDING ──(cancel_delay)──► CANCELED
        (fills may still land while the cancel is pending: a cancel races the fills, as at a real venue)
    any open state ──expires_at passed──► EXPIRED;  a failed check ──► REJECTED

Each venue app maps these onto its broker's own words and wire shapes. The engine is driven by one
background task (:meth:`run`) that ticks every ``tick_interval`` seconds; a price change through
:meth:`set_price` re-checks the working orders at once. Every change of an order calls the
listeners registered with :meth:`subscribe` (the IBKR venue's WebSocket uses them).

Configuration (:class:`EngineConfig`) makes tests fast and deterministic: a static price model,
short delays, fills in one piece or several. The default (what ``serve`` runs) is worth watching:
a random walk, and fills in three parts a second apart.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .instruments import SimInstrument

log = logging.getLogger(__name__)

__all__ = ["Engine", "EngineConfig", "SimAccount", "SimFill", "SimOrder", "SimPosition", "SimStatus"]

class SimStatus(enum.Enum):
    INACTIVE = "inactive"
    PENDING_NEW = "pending_new"
    WORKING = "working"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCEL_PENDING = "cancel_pending"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


OPEN_STATES = frozenset(
    {SimStatus.INACTIVE, SimStatus.PENDING_NEW, SimStatus.WORKING, SimStatus.PARTIALLY_FILLED, SimStatus.CANCEL_PENDING}
)
TERMINAL_STATES = frozenset({SimStatus.FILLED, SimStatus.CANCELED, SimStatus.EXPIRED, SimStatus.REJECTED})


@dataclass(slots=True)
class EngineConfig:
    """Timing and price behaviour of one engine.

    Attributes:
        ack_delay: seconds from activation to WORKING.
        fill_delay: seconds a WORKING order waits before it may fill.
        cancel_delay: seconds a CANCEL_PENDING order waits before CANCELED.
        fill_steps: number of partial fills an order is filled in (1 = in one piece).
        fill_interval: seconds between partial fills.
        tick_interval: seconds between engine ticks.
        price_model: ``"static"`` (prices move only through :meth:`Engine.set_price`) or
            ``"random_walk"`` (seeded, ``volatility`` per tick as a fraction of the price).
    """

    ack_delay: float = 0.3
    fill_delay: float = 1.0
    cancel_delay: float = 0.5
    fill_steps: int = 3
    fill_interval: float = 1.0
    tick_interval: float = 0.1
    price_model: str = "random_walk"
    volatility: float = 0.0005
    seed: int = 7

    @classmethod
    def fast(cls) -> EngineConfig:
        """Deterministic and quick: static prices, one fill, tens of milliseconds per step."""
        return cls(ack_delay=0.02, fill_delay=0.05, cancel_delay=0.02, fill_steps=1, fill_interval=0.05,
                   tick_interval=0.02, price_model="static")


@dataclass(slots=True)
class SimFill:
    id: str
    order_id: str
    account_id: str
    quantity: Decimal
    price: Decimal
    at: datetime


@dataclass(slots=True)
class SimPosition:
    instrument: SimInstrument
    quantity: Decimal = Decimal(0)
    average_price: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    product: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SimAccount:
    id: str
    currency: str
    cash: Decimal
    name: str = ""
    positions: dict[tuple[str, str], SimPosition] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def position(self, instrument: SimInstrument, product: str = "") -> SimPosition:
        key = (instrument.key, product)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = SimPosition(instrument, product=product)
        return pos


@dataclass(slots=True)
class SimOrder:
    id: str
    account_id: str
    instrument: SimInstrument
    side: str  # "buy" | "sell"
    quantity: Decimal
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "day"
    expires_at: datetime | None = None
    client_order_id: str | None = None
    product: str = ""
    status: SimStatus = SimStatus.INACTIVE
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal = Decimal(0)
    triggered: bool = False
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    activated_at: datetime | None = None
    working_since: float | None = None
    last_fill_at: float | None = None
    canceled_at: datetime | None = None
    cancel_requested_at: float | None = None
    executed_at: datetime | None = None
    expired_at: datetime | None = None
    rejected_at: datetime | None = None
    reject_reason: str | None = None
    fills: list[SimFill] = field(default_factory=list)
    allocation: dict[str, Decimal] | None = None  # member account → quantity (allocation-group orders)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def order_type(self) -> str:
        if self.limit_price is not None and self.stop_price is not None:
            return "stop_limit"
        if self.limit_price is not None:
            return "limit"
        if self.stop_price is not None:
            return "stop"
        return "market"

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES


Listener = Callable[[SimOrder], None]


class Engine:
    """One paper broker: accounts, prices and orders, advanced by :meth:`run`."""

    def __init__(self, instruments: tuple[SimInstrument, ...], config: EngineConfig | None = None,
                 id_prefix: str = "") -> None:
        self.config = config or EngineConfig()
        self.instruments = {ins.key: ins for ins in instruments}
        self.prices: dict[str, Decimal] = {ins.key: ins.price for ins in instruments}
        self.accounts: dict[str, SimAccount] = {}
        self.orders: dict[str, SimOrder] = {}
        self._listeners: list[Listener] = []
        self._rng = random.Random(self.config.seed)
        self._ids = itertools.count(1)
        self._id_prefix = id_prefix
        self._loop_time: Callable[[], float] = lambda: asyncio.get_running_loop().time()
        self.allocations: dict[str, Callable[[SimOrder], dict[str, Decimal]]] = {}

    # -- set-up ---------------------------------------------------------------------------
    def add_account(self, account: SimAccount) -> SimAccount:
        self.accounts[account.id] = account
        return account

    def seed_position(self, account_id: str, instrument_key: str, quantity: str | Decimal,
                      average_price: str | Decimal, product: str = "", **extra: Any) -> SimPosition:
        pos = self.accounts[account_id].position(self.instruments[instrument_key], product)
        pos.quantity = Decimal(quantity)
        pos.average_price = Decimal(average_price)
        pos.extra.update(extra)
        return pos

    def margin_shortfall(self, account_id: str, instrument_key: str, signed_quantity: Decimal,
                         rate: Decimal = Decimal("0.5")) -> tuple[Decimal, Decimal] | None:
        """The buying-power check the venues share (Reg T style): an order that raises the account's
        gross position value (longs plus shorts, at market) must leave ``rate`` × that value covered
        by the account's equity (cash plus positions at market). ``rate`` is the initial margin:
        0.5 for a margin account, 1 for a cash account. Returns ``(equity, required margin)`` when
        the order would exceed the buying power, else ``None``; an order that lowers the gross
        position value always passes."""
        account = self.accounts[account_id]
        held = Decimal(0)
        equity, gross = account.cash, Decimal(0)
        for (key, _), pos in account.positions.items():
            value = pos.quantity * self.prices[key]
            equity += value
            gross += abs(value)
            if key == instrument_key:
                held += pos.quantity
        price = self.prices[instrument_key]
        after = gross - abs(held * price) + abs((held + signed_quantity) * price)
        if after <= gross:
            return None
        required = after * rate
        return (equity, required) if required > equity else None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(order)`` after every change of any order; returns the unsubscriber."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def next_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids)}"

    # -- prices ---------------------------------------------------------------------------
    def price(self, instrument_key: str) -> Decimal:
        return self.prices[instrument_key]

    def set_price(self, instrument_key: str, price: Decimal) -> None:
        """Move an instrument's price and match the working orders against it at once."""
        self.prices[instrument_key] = price
        self._match_all()

    def _walk_prices(self) -> None:
        if self.config.price_model != "random_walk":
            return
        for key, px in self.prices.items():
            tick = self.instruments[key].tick_size
            step = Decimal(str(self._rng.gauss(0, self.config.volatility))) * px
            new = ((px + step) / tick).quantize(Decimal(1), ROUND_HALF_UP) * tick
            self.prices[key] = max(new, tick)

    # -- order life cycle -----------------------------------------------------------------
    def _now(self) -> float:
        try:
            return self._loop_time()
        except RuntimeError:
            return 0.0

    def _changed(self, order: SimOrder) -> None:
        order.updated_at = datetime.now(UTC)
        for listener in list(self._listeners):
            listener(order)

    def add_order(self, order: SimOrder) -> SimOrder:
        """Record a new order in INACTIVE (a venue with one-step placement activates it at once)."""
        self.orders[order.id] = order
        self._changed(order)
        return order

    def activate(self, order: SimOrder) -> None:
        order.status = SimStatus.PENDING_NEW
        order.activated_at = datetime.now(UTC)
        order.extra["pending_since"] = self._now()
        self._changed(order)

    def reject(self, order: SimOrder, reason: str) -> None:
        order.status = SimStatus.REJECTED
        order.rejected_at = datetime.now(UTC)
        order.reject_reason = reason
        self._changed(order)

    def cancel(self, order: SimOrder) -> None:
        """Cancel an open order: INACTIVE cancels at once, the others via CANCEL_PENDING."""
        if order.status is SimStatus.INACTIVE:
            self._finish_cancel(order)
            return
        order.status = SimStatus.CANCEL_PENDING
        order.cancel_requested_at = self._now()
        self._changed(order)

    def _finish_cancel(self, order: SimOrder) -> None:
        order.status = SimStatus.CANCELED
        order.canceled_at = datetime.now(UTC)
        self._changed(order)

    def modify(self, order: SimOrder, *, quantity: Decimal | None = None, limit_price: Decimal | None = None,
               stop_price: Decimal | None = None, time_in_force: str | None = None,
               expires_at: datetime | None = None) -> None:
        if quantity is not None:
            order.quantity = quantity
        if limit_price is not None:
            order.limit_price = limit_price
        if stop_price is not None:
            order.stop_price = stop_price
        if time_in_force is not None:
            order.time_in_force = time_in_force
        if expires_at is not None:
            order.expires_at = expires_at
        self._changed(order)
        self._match(order)

    def fill(self, order: SimOrder, quantity: Decimal, price: Decimal) -> None:
        """Execute ``quantity`` of ``order`` at ``price``: cash, positions and the order change."""
        if quantity <= 0:
            return
        allocation = self.allocations.get(order.account_id)
        if allocation is not None:
            split = allocation(order) if order.allocation is None else order.allocation
            order.allocation = split
            share_total = sum(split.values()) or Decimal(1)
            for member, share in split.items():
                self._book(member, order, quantity * share / share_total, price)
        else:
            self._book(order.account_id, order, quantity, price)
        total = order.average_price * order.filled_quantity + price * quantity
        order.filled_quantity += quantity
        order.average_price = total / order.filled_quantity
        order.fills.append(SimFill(self.next_id(), order.id, order.account_id, quantity, price, datetime.now(UTC)))
        order.last_fill_at = self._now()
        if order.filled_quantity >= order.quantity:
            order.status = SimStatus.FILLED
            order.executed_at = datetime.now(UTC)
        elif order.status is not SimStatus.CANCEL_PENDING:
            order.status = SimStatus.PARTIALLY_FILLED
        self._changed(order)

    def _book(self, account_id: str, order: SimOrder, quantity: Decimal, price: Decimal) -> None:
        account = self.accounts[account_id]
        pos = account.position(order.instrument, order.product)
        signed = quantity if order.side == "buy" else -quantity
        account.cash -= signed * price
        new_qty = pos.quantity + signed
        if pos.quantity == 0 or (pos.quantity > 0) == (signed > 0):
            # opening or adding: average price moves
            pos.average_price = (pos.average_price * abs(pos.quantity) + price * quantity) / abs(new_qty)
        else:
            closed = min(abs(signed), abs(pos.quantity))
            direction = 1 if pos.quantity > 0 else -1
            pos.realized_pnl += (price - pos.average_price) * closed * direction
            if new_qty != 0 and (new_qty > 0) != (pos.quantity > 0):
                pos.average_price = price  # flipped through zero
        pos.quantity = new_qty
        if pos.quantity == 0:
            pos.average_price = Decimal(0)

    def _marketable(self, order: SimOrder, price: Decimal) -> bool:
        if order.stop_price is not None and not order.triggered:
            hit = price >= order.stop_price if order.side == "buy" else price <= order.stop_price
            if not hit:
                return False
            order.triggered = True
        if order.limit_price is None:
            return True
        return price <= order.limit_price if order.side == "buy" else price >= order.limit_price

    def _match(self, order: SimOrder) -> None:
        now = self._now()
        if order.status not in (SimStatus.WORKING, SimStatus.PARTIALLY_FILLED, SimStatus.CANCEL_PENDING):
            return  # a cancel still pending races the fills: the venue may fill before it confirms
        if order.working_since is None or now - order.working_since < self.config.fill_delay:
            return
        if order.last_fill_at is not None and now - order.last_fill_at < self.config.fill_interval:
            return
        price = self.prices[order.instrument.key]
        if not self._marketable(order, price):
            return
        fill_price = price
        if order.limit_price is not None:
            fill_price = min(price, order.limit_price) if order.side == "buy" else max(price, order.limit_price)
        steps = max(self.config.fill_steps, 1)
        chunk = (order.quantity / steps).quantize(Decimal(1)) or Decimal(1)
        qty = min(chunk, order.remaining) if steps > 1 else order.remaining
        self.fill(order, qty, fill_price)

    def _match_all(self) -> None:
        for order in list(self.orders.values()):
            self._match(order)

    def tick(self) -> None:
        """Advance every open order by one step; called by :meth:`run`."""
        now = self._now()
        wall = datetime.now(UTC)
        self._walk_prices()
        for order in list(self.orders.values()):
            if not order.is_open:
                continue
            if order.expires_at is not None and wall >= order.expires_at and order.status is not SimStatus.CANCEL_PENDING:
                order.status = SimStatus.EXPIRED
                order.expired_at = wall
                self._changed(order)
                continue
            if order.status is SimStatus.PENDING_NEW and now - order.extra.get("pending_since", now) >= self.config.ack_delay:
                order.status = SimStatus.WORKING
                order.working_since = now
                self._changed(order)
            elif order.status is SimStatus.CANCEL_PENDING:
                self._match(order)
                if order.status is SimStatus.CANCEL_PENDING and order.cancel_requested_at is not None \
                        and now - order.cancel_requested_at >= self.config.cancel_delay:
                    self._finish_cancel(order)
            else:
                self._match(order)

    async def run(self) -> None:
        """Tick forever (until cancelled)."""
        while True:
            try:
                self.tick()
            except Exception:  # a bug in one tick must not stop the venue
                log.exception("sandbox engine tick failed")
            await asyncio.sleep(self.config.tick_interval)
