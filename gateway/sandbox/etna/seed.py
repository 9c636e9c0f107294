"""The ETNA venue's seed: a user with two accounts holding positions and a history of orders
(filled, cancelled, rejected, done for the day, and some still working), a second user who
logs in with two factors, and a third (``LARGE_USER``) whose one account is large: 150 positions
(the 10 real US listings and 140 synthetic ones, ``SBX001``…) and 300 orders, for checks that
upstream calls do not grow with the size of an account."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ..engine import Engine, SimAccount, SimFill, SimOrder, SimStatus
from ..instruments import SimInstrument
from .auth import AuthStore, EtnaUser
from .state import EtnaState
from .wire import ticks_of

__all__ = ["APP_KEY", "LARGE_ACCOUNT", "LARGE_USER", "MAIN_USER", "TWO_FACTOR_USER", "seed", "synthetic_instruments"]

APP_KEY = "etna-sandbox-6f1c2e9a4b"
MAIN_USER = {"username": "janedoe", "password": "paper-trading-7125", "user_id": "7125"}
TWO_FACTOR_USER = {"username": "johnroe", "password": "paper-trading-7126", "user_id": "7126",
                   "verification_code": "424242"}

_ACCOUNTS = {
    "6303": ("Margin", "250000", [("AAPL", "150", "156.57"), ("MSFT", "40", "380.10"), ("SPY", "25", "512.30"),
                                  ("TSLA", "10", "240.00"), ("IBM", "30", "190.50")]),
    "6304": ("DayTrader", "120000", [("NVDA", "200", "95.40"), ("QQQ", "15", "430.00"), ("META", "-20", "580.00"),
                                     ("AMZN", "35", "178.25"), ("GOOGL", "12", "150.10")]),
    "6310": ("Margin", "50000", [("AAPL", "5", "170.00")]),
}
LARGE_USER = {"username": "maxlarge", "password": "paper-trading-7127", "user_id": "7127"}
LARGE_ACCOUNT = "6320"
_OWNERS = {"6303": 7125, "6304": 7125, "6310": 7126, LARGE_ACCOUNT: 7127}
_SYNTHETIC = "SBX"


def _isin(body: str) -> str:
    """``body`` (11 characters) with its ISIN check digit (Luhn over the letters as numbers)."""
    digits = "".join(str(int(c, 36)) for c in body)
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n // 10 + n % 10
    return body + str((10 - total % 10) % 10)


def synthetic_instruments(count: int = 140) -> tuple[SimInstrument, ...]:
    """Synthetic US listings ``SBX001``… (ETNA SecurityIds 5001…) for the large account."""
    return tuple(
        SimInstrument(f"{_SYNTHETIC}{n:03d}", f"{_SYNTHETIC}{n:03d}", _isin(f"US99{n:07d}"),
                      f"SANDBOX SYNTHETIC {n:03d} INC", "USD", "XNAS", "stock", Decimal(12 + n % 80) + Decimal("0.35"),
                      ids={"etna": str(5000 + n)})
        for n in range(1, count + 1))


def _users(auth: AuthStore) -> None:
    auth.add_user(EtnaUser(7125, MAIN_USER["username"], MAIN_USER["password"], "Jane", "Doe",
                           "jane.doe@example.com", ["6303", "6304"]))
    auth.add_user(EtnaUser(7126, TWO_FACTOR_USER["username"], TWO_FACTOR_USER["password"], "John", "Roe",
                           "john.roe@example.com", ["6310"], verification_code=TWO_FACTOR_USER["verification_code"]))
    auth.add_user(EtnaUser(7127, LARGE_USER["username"], LARGE_USER["password"], "Max", "Large",
                           "max.large@example.com", [LARGE_ACCOUNT]))


def _order(state: EtnaState, rng: random.Random, account_id: str, key: str, now: datetime) -> SimOrder:
    engine = state.engine
    ins = engine.instruments[key]
    price = engine.price(key)
    created = now - timedelta(days=rng.randint(1, 40), seconds=rng.randint(0, 86_399),
                              microseconds=rng.randint(0, 999_999))
    side = rng.choice(["Buy", "Buy", "Sell"])
    type_ = rng.choice(["Market", "Limit", "Limit", "Stop", "StopLimit"])
    qty = Decimal(rng.choice([1, 5, 10, 20, 25, 50, 100, 150, 200]))
    limit = (price * Decimal(rng.choice(["0.9", "0.95", "1.02"]))).quantize(Decimal("0.01"))
    stop = (price * Decimal(rng.choice(["0.92", "1.05"]))).quantize(Decimal("0.01"))
    order = SimOrder(
        id=engine.next_id(), account_id=account_id, instrument=ins, side="buy" if side == "Buy" else "sell",
        quantity=qty, limit_price=limit if type_ in ("Limit", "StopLimit") else None,
        stop_price=stop if type_ in ("Stop", "StopLimit") else None,
        client_order_id=str(rng.randint(10**8, 10**10)), created_at=created,
    )
    fate = rng.choice(["filled", "filled", "filled", "canceled", "rejected", "done", "working", "working"])
    tif = "GoodTillCancel" if fate == "working" else rng.choice(["Day", "Day", "GoodTillCancel"])
    order.time_in_force = "gtc" if tif == "GoodTillCancel" else "day"
    order.updated_at = created + timedelta(minutes=rng.randint(1, 400), microseconds=rng.randint(0, 999_999))
    order.extra.update({"wire_side": side, "wire_type": type_, "wire_tif": tif, "user_id": _OWNERS[account_id],
                        "request_id": state.next_request_id(), "correlation_id": uuid.uuid4().hex,
                        "state_id": rng.randint(168_000, 175_000)})
    if tif == "Day":
        order.expires_at = created.replace(hour=21, minute=0, second=0, microsecond=0)
    if fate == "filled":
        fill_px = order.limit_price or price * Decimal(rng.choice(["0.97", "1.0", "1.01"]))
        fill_px = fill_px.quantize(Decimal("0.01"))
        order.status, order.filled_quantity, order.average_price = SimStatus.FILLED, qty, fill_px
        order.fills.append(SimFill(engine.next_id(), order.id, account_id, qty, fill_px, order.updated_at))
        order.extra["seen_filled"] = qty
        order.extra["target"] = rng.choice(["New", "Modify"])
    elif fate == "canceled":
        order.status = SimStatus.CANCELED
        order.extra.update({"target": "Cancel", "trans_type": "Cancel"})
    elif fate == "rejected":
        order.status, order.reject_reason = SimStatus.REJECTED, "DayTradingBuyingPowerExceeded"
    elif fate == "done":
        order.status = SimStatus.EXPIRED
        order.time_in_force, order.extra["wire_tif"] = "day", "Day"
    else:  # resting far from the market so that it stays open
        order.status, order.working_since = SimStatus.WORKING, 0.0
        order.stop_price = None
        order.limit_price = (price * (Decimal("0.6") if side == "Buy" else Decimal("1.6"))).quantize(Decimal("0.01"))
        order.extra["wire_type"] = "Limit"
        order.expires_at = None
        if side == "Sell":  # a resting sell of something held
            held = engine.accounts[account_id].positions
            longs = [p for p in held.values() if p.quantity > 0]
            pos = rng.choice(longs)
            order.instrument, order.quantity = pos.instrument, min(order.quantity, pos.quantity)
            order.limit_price = (engine.price(pos.instrument.key) * Decimal("1.6")).quantize(Decimal("0.01"))
    return order


def seed(state: EtnaState, orders_per_account: int = 24) -> None:
    """Users, accounts, positions and an order history; deterministic (``random.Random(7125)``)."""
    engine: Engine = state.engine
    _users(state.auth)
    now = datetime.now(UTC)
    rng = random.Random(7125)
    for account_id, (margin, cash, positions) in _ACCOUNTS.items():
        engine.add_account(SimAccount(account_id, "USD", Decimal(cash), name=account_id,
                                      extra={"MarginType": margin, "ClearingAccount": account_id}))
        for n, (key, qty, avg) in enumerate(positions):
            pos = engine.seed_position(account_id, key, qty, avg, eod_price=engine.price(key))
            opened = now - timedelta(days=60 - 7 * n, hours=n, microseconds=37 * n)
            state.touch_position(pos, opened)
            pos.extra["ModifyDate"] = ticks_of(now - timedelta(days=9 - n, minutes=13 * n), pos.extra["Id"] + 5)
            pos.extra["DayQuantity"] = Decimal(0)
    real = [k for k in engine.instruments if not k.startswith(_SYNTHETIC)]
    for account_id in ("6303", "6304"):
        for _ in range(orders_per_account):
            order = _order(state, rng, account_id, rng.choice(real), now)
            engine.orders[order.id] = order
    _seed_large(state, now)


def _seed_large(state: EtnaState, now: datetime, orders: int = 300) -> None:
    engine = state.engine
    engine.add_account(SimAccount(LARGE_ACCOUNT, "USD", Decimal(5_000_000), name=LARGE_ACCOUNT,
                                  extra={"MarginType": "Margin", "ClearingAccount": LARGE_ACCOUNT}))
    rng = random.Random(7127)
    keys = list(engine.instruments)
    for n, key in enumerate(keys):
        avg = (engine.price(key) * Decimal(rng.choice(["0.8", "0.95", "1.1"]))).quantize(Decimal("0.01"))
        pos = engine.seed_position(LARGE_ACCOUNT, key, Decimal(rng.choice([5, 10, 40, 100, 250])), avg,
                                   eod_price=engine.price(key))
        state.touch_position(pos, now - timedelta(days=200 - n, minutes=n))
        pos.extra["DayQuantity"] = Decimal(0)
    for _ in range(orders):
        order = _order(state, rng, LARGE_ACCOUNT, rng.choice(keys), now)
        engine.orders[order.id] = order
