"""The IBKR sandbox's Financial Advisor book: one master account, twenty paper sub-accounts (DU…),
allocation groups covering every method code, seeded positions and working orders (limit orders
far from the market in most sub-accounts, and one allocation-group order under the master).

Instruments are the catalogue's US listings (real conids, ``ids["conid"]``) plus, for the one
sub-account that holds 250 positions, the **synthetic** instruments of :mod:`.synthetic`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from ..engine import Engine, SimAccount, SimOrder
from ..instruments import CATALOGUE, SimInstrument
from .synthetic import SYNTHETIC

__all__ = ["BIG_ACCOUNT", "GROUPS", "MASTER", "SUB_ACCOUNTS", "SimGroup", "instruments", "seed",
           "seed_orders"]

MASTER = "DF4510328"
SUB_ACCOUNTS: tuple[str, ...] = tuple(f"DU45103{n:02d}" for n in range(30, 50))
BIG_ACCOUNT = "DU4510341"  #: the sub-account seeded with 250 positions

_NAMES = (
    "Alice Meyer", "Bruno Costa", "Chen Wei", "Dana Kowalski", "Emeka Obi", "Fatima Zahra",
    "Gustav Lind", "Hana Sato", "Ivan Petrov", "Julia Romano", "Kofi Mensah", "Lena Fischer Family Trust",
    "Mateo Alvarez", "Nadia Haddad", "Oskar Nilsson", "Priya Raman", "Quentin Dubois", "Rosa Lindqvist",
    "Sven Bauer IRA", "Tomoko Ishii",
)


@dataclass(frozen=True, slots=True)
class SimGroup:
    """An FA allocation group: ``method`` is IBKR's code (A E N C P R S); ``amounts`` only for the
    user-specified methods (C P R S)."""

    name: str
    method: str
    members: tuple[str, ...]
    amounts: tuple[Decimal, ...] = field(default=())


GROUPS: tuple[SimGroup, ...] = (
    SimGroup("Growth_Equal", "E", SUB_ACCOUNTS[0:4]),
    SimGroup("Income_NetLiq", "N", SUB_ACCOUNTS[2:6]),
    SimGroup("Core_AvailEq", "A", SUB_ACCOUNTS[4:8]),
    SimGroup("Tilt_Pct", "P", SUB_ACCOUNTS[0:3], (Decimal(50), Decimal(30), Decimal(20))),
    SimGroup("Family_Ratio", "R", SUB_ACCOUNTS[6:9], (Decimal(1), Decimal(2), Decimal(5))),
    SimGroup("Fixed_Shares", "S", SUB_ACCOUNTS[8:10], (Decimal(10), Decimal(30))),
    SimGroup("Cash_Split", "C", SUB_ACCOUNTS[1:3], (Decimal(5000), Decimal(15000))),
)


def instruments() -> tuple[SimInstrument, ...]:
    """The venue's instruments: catalogue entries with a conid, then the synthetic block."""
    return tuple(i for i in CATALOGUE if "conid" in i.ids) + SYNTHETIC


def _net_liquidation(engine: Engine, account: SimAccount) -> Decimal:
    value = sum((p.quantity * engine.price(p.instrument.key) for p in account.positions.values()), Decimal(0))
    return account.cash + value


def _largest_remainder(total: Decimal, weights: dict[str, Decimal]) -> dict[str, Decimal]:
    """Split whole ``total`` shares over ``weights`` (IBKR allocates whole shares)."""
    weight_sum = sum(weights.values())
    if weight_sum <= 0:
        weights = {k: Decimal(1) for k in weights}
        weight_sum = Decimal(len(weights))
    exact = {k: total * w / weight_sum for k, w in weights.items()}
    shares = {k: v.quantize(Decimal(1), ROUND_DOWN) for k, v in exact.items()}
    left = int(total - sum(shares.values()))
    for k in sorted(exact, key=lambda k: exact[k] - shares[k], reverse=True)[:max(left, 0)]:
        shares[k] += 1
    return {k: v for k, v in shares.items() if v > 0}


def allocator(engine: Engine, group: SimGroup) -> Callable[[SimOrder], dict[str, Decimal]]:
    """The engine's allocation hook for ``group``: member → shares of the order's quantity."""

    def split(order: SimOrder) -> dict[str, Decimal]:
        members = {m: engine.accounts[m] for m in group.members}
        if group.method == "E":
            weights = {m: Decimal(1) for m in members}
        elif group.method == "N":
            weights = {m: _net_liquidation(engine, a) for m, a in members.items()}
        elif group.method == "A":
            weights = {m: max(a.cash, Decimal(0)) for m, a in members.items()}
        else:  # C P R S: the user-specified amounts, proportionally
            weights = dict(zip(group.members, group.amounts, strict=True))
        return _largest_remainder(order.quantity, weights)

    return split


def seed(engine: Engine) -> None:
    """Accounts, cash, positions and allocation hooks of the FA book."""
    engine.add_account(SimAccount(MASTER, "USD", Decimal("25000.00"), name="Harbour Advisors LLC"))
    us = [i for i in CATALOGUE if "conid" in i.ids]
    for n, acct in enumerate(SUB_ACCOUNTS):
        engine.add_account(SimAccount(acct, "USD", Decimal(100_000 + 25_000 * n), name=_NAMES[n]))
        if acct == BIG_ACCOUNT:
            continue
        for k in range(3):
            ins = us[(n + 3 * k) % len(us)]
            cost = (ins.price * Decimal("0.93")).quantize(Decimal("0.01"))
            engine.seed_position(acct, ins.key, Decimal(5 + 3 * n + k), cost)
    for k, ins in enumerate(us + list(SYNTHETIC)):
        if k >= 250:
            break
        cost = (ins.price * Decimal("0.97")).quantize(Decimal("0.01"))
        engine.seed_position(BIG_ACCOUNT, ins.key, Decimal(1 + k % 40), cost)
    for group in GROUPS:
        engine.allocations[group.name] = allocator(engine, group)


def seed_orders(engine: Engine, next_id: Callable[[], str], coids: set[str]) -> list[SimOrder]:
    """Working orders of the book, so that a fresh venue shows open orders: a GTC buy limit 12 %
    under the market in two sub-accounts of every three (``order_ref`` ``rebal-<account>``), a
    second one (a sell limit 12 % over the market, no ``order_ref``) in every fourth, and one
    allocation-group order (``Growth_Equal``) read under the master."""
    us = [i for i in CATALOGUE if "conid" in i.ids and i.ids["conid"] != "8314"]
    specs: list[tuple[str, SimInstrument, str, Decimal, str | None]] = []
    for n, acct in enumerate(SUB_ACCOUNTS):
        if n % 3 != 2:
            specs.append((acct, us[n % len(us)], "buy", Decimal("0.88"), f"rebal-{acct}"))
        if n % 4 == 1:
            held = [p.instrument for p in engine.accounts[acct].positions.values() if p.quantity > 1]
            if held:
                specs.append((acct, held[0], "sell", Decimal("1.12"), None))
    specs.append(("Growth_Equal", us[0], "buy", Decimal("0.90"), "rebal-Growth_Equal"))
    orders = []
    for acct, ins, side, factor, coid in specs:
        limit = (ins.price * factor).quantize(Decimal("0.01"))
        order = SimOrder(id=next_id(), account_id=acct, instrument=ins, side=side,
                         quantity=Decimal(1) if side == "sell" else Decimal(4), limit_price=limit,
                         time_in_force="gtc", client_order_id=coid)
        if coid:
            coids.add(coid)
        engine.add_order(order)
        engine.activate(order)
        orders.append(order)
    return orders
