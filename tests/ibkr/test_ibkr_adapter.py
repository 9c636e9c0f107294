"""The IBKR adapter against the IBKR sandbox over HTTP (relaxed pacing: these tests are not about
pacing; see test_ibkr_pacing.py for that)."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest
import pytest_asyncio
from ibkr_support import BIG, CONNECTION, MASTER, SUBS, Ctx, make_adapter, order, start, stop, until

from gateway.brokers.base import Confirmation
from gateway.domain.enums import AccountKind, AllocationMethod, OrderSide, OrderStatus, OrderType
from gateway.domain.errors import AuthenticationError, IdempotencyConflict, InsufficientFunds, OrderNotFound
from gateway.domain.keys import AccountKey, ConfirmationKey
from gateway.domain.models import Order
from gateway.domain.requests import OrderUpdate
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner


@pytest_asyncio.fixture(scope="module")
async def ctx():
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast())
    c = await start(runner)
    yield c
    await stop(c, runner)


def key(account: str) -> AccountKey:
    return AccountKey(CONNECTION, account)


async def test_ibkr_accounts_fa_session_master_and_clients(ctx: Ctx) -> None:
    accounts = await ctx.adapter.fetch_accounts()
    kinds = {a.account_number: a.kind for a in accounts}
    assert kinds[MASTER] is AccountKind.ADVISOR_MASTER
    assert [a for a, k in kinds.items() if k is AccountKind.ADVISOR_CLIENT] == list(SUBS)
    assert all(a.base_currency == "USD" for a in accounts)


async def test_ibkr_allocation_groups_every_method_with_members(ctx: Ctx) -> None:
    groups = {g.key.name: g for g in await ctx.adapter.fetch_allocation_groups()}
    assert {g.method for g in groups.values()} == set(AllocationMethod)
    tilt = groups["Tilt_Pct"]
    assert [(m.account.account_number, m.amount) for m in tilt.members] == \
        [(SUBS[0], Decimal(50)), (SUBS[1], Decimal(30)), (SUBS[2], Decimal(20))]
    assert all(m.amount is None for m in groups["Growth_Equal"].members)
    assert tilt.master_account == MASTER


async def _seed_orders(ctx: Ctx, accounts: tuple[str, ...], tag: str) -> dict[str, str]:
    placed = {}
    for acct in accounts:
        result = await ctx.adapter.create_order(order(f"{tag}-{acct}", account=acct, quantity="2"))
        assert isinstance(result, Order)
        assert result.key.account_number == acct and result.client_order_id == f"{tag}-{acct}"
        placed[acct] = result.key.broker_order_id
    return placed


async def test_ibkr_fetch_orders_many_switches_once_per_account(ctx: Ctx) -> None:
    placed = await _seed_orders(ctx, SUBS[:6], "many")
    selected = (await ctx.session())["selected"]
    before = (await ctx.stats()).get("POST /v1/api/iserver/account", 0)
    accounts = [key(a) for a in SUBS]
    result = await ctx.adapter.fetch_orders_many(accounts)
    switches = (await ctx.stats()).get("POST /v1/api/iserver/account", 0) - before
    assert switches == sum(1 for a in SUBS if a != selected)
    for account in accounts:
        orders = result[account]
        assert isinstance(orders, list)
        assert all(o.key.account_number == account.account_number for o in orders)
        if account.account_number in placed:
            assert placed[account.account_number] in {o.key.broker_order_id for o in orders}
    # the batch started with the selected account: running it again switches one fewer time
    before = (await ctx.stats())["POST /v1/api/iserver/account"]
    await ctx.adapter.fetch_orders_many(list(reversed(accounts)))
    assert (await ctx.stats())["POST /v1/api/iserver/account"] - before == len(SUBS) - 1


async def test_ibkr_concurrent_fetch_orders_never_cross_accounts(ctx: Ctx) -> None:
    placed = await _seed_orders(ctx, SUBS[6:11], "race")
    rng = random.Random(3)
    for _ in range(3):
        picks = [rng.choice(SUBS) for _ in range(50)]
        results = await asyncio.gather(*(ctx.adapter.fetch_orders(key(a)) for a in picks))
        held = await _venue_orders_by_account(ctx)
        for acct, orders in zip(picks, results, strict=True):
            assert all(o.key.account_number == acct for o in orders)
            # complete: every order the venue holds for the account, none of another's (a read that
            # crossed into another account's session would miss them, whatever the acct filter drops)
            assert {o.key.broker_order_id for o in orders} == held.get(acct, set()), acct
            if acct in placed:
                assert placed[acct] in {o.key.broker_order_id for o in orders}


async def _venue_orders_by_account(ctx: Ctx) -> dict[str, set[str]]:
    held: dict[str, set[str]] = {}
    for o in (await ctx.state())["orders"]:
        if not o["allocation"]:
            held.setdefault(o["account"], set()).add(str(o["id"]))
    return held


async def test_ibkr_allocation_group_order_allocates_by_method(ctx: Ctx) -> None:
    before = await ctx.state()

    def held(state: dict, acct: str) -> Decimal:
        return sum((Decimal(p["quantity"]) for p in state["accounts"][acct]["positions"] if p["instrument"] == "MSFT"),
                   Decimal(0))

    cases = {"Fixed_Shares": ("40", {SUBS[8]: 10, SUBS[9]: 30}),
             "Growth_Equal": ("10", {SUBS[0]: 3, SUBS[1]: 3, SUBS[2]: 2, SUBS[3]: 2})}
    for group, (qty, expected) in cases.items():
        first = await ctx.adapter.create_order(order(f"grp-{group}", group=group, symbol="MSFT", quantity=qty))
        assert isinstance(first, Confirmation) and first.message_ids == ("p6",)
        placed = await ctx.adapter.confirm_order(first.key, True)
        assert isinstance(placed, Order)
        assert placed.allocation_group is not None and placed.allocation_group.name == group
        assert placed.key.account_number == MASTER and not placed.account_known

        async def filled(coid: str = f"grp-{group}") -> bool:
            return any(o["client_order_id"] == coid and o["status"] == "filled" for o in (await ctx.state())["orders"])

        await until(filled)
        state = await ctx.state()
        alloc = next(o["allocation"] for o in state["orders"] if o["client_order_id"] == f"grp-{group}")
        assert {a: Decimal(v) for a, v in alloc.items()} == {a: Decimal(v) for a, v in expected.items()}
        for acct, shares in expected.items():
            assert held(state, acct) - held(before, acct) == shares
        before = state
    master_orders = await ctx.adapter.fetch_orders(key(MASTER))
    assert {o.allocation_group.name for o in master_orders if o.allocation_group} >= set(cases)


async def test_ibkr_o163_confirm_places_and_decline_places_nothing(ctx: Ctx) -> None:
    far = str((Decimal("228.52") * Decimal("1.10")).quantize(Decimal("0.01")))
    asked = await ctx.adapter.create_order(order("o163-yes", account=SUBS[4], kind=OrderType.LIMIT, limit=far))
    assert isinstance(asked, Confirmation) and asked.message_ids == ("o163",)
    placed = await ctx.adapter.confirm_order(asked.key, True)
    assert isinstance(placed, Order) and placed.client_order_id == "o163-yes"
    assert placed.limit_price is not None and placed.limit_price.amount == Decimal(far)
    again = await ctx.adapter.confirm_order(asked.key, True)  # answered once; asked again, the same answer
    assert isinstance(again, Order) and again.key == placed.key

    asked = await ctx.adapter.create_order(order("o163-no", account=SUBS[4], kind=OrderType.LIMIT, limit=far))
    assert isinstance(asked, Confirmation)
    assert await ctx.adapter.confirm_order(asked.key, False) is None
    assert await ctx.adapter.confirm_order(asked.key, True) is None  # declined stays declined
    coids = [o["client_order_id"] for o in (await ctx.state())["orders"]]
    assert coids.count("o163-yes") == 1 and "o163-no" not in coids
    with pytest.raises(OrderNotFound):  # only a confirmation never issued is unknown
        await ctx.adapter.confirm_order(ConfirmationKey(CONNECTION, "never-issued"), True)


async def test_ibkr_two_concurrent_placements_with_questions_do_not_cross(ctx: Ctx) -> None:
    async def place_and_confirm(coid: str, acct: str, qty: str, limit: str) -> Order:
        asked = await ctx.adapter.create_order(order(coid, account=acct, kind=OrderType.LIMIT, quantity=qty,
                                                     limit=limit))
        assert isinstance(asked, Confirmation)
        await asyncio.sleep(0.05)  # the user thinks; the other placement goes ahead meanwhile
        placed = await ctx.adapter.confirm_order(asked.key, True)
        assert isinstance(placed, Order)
        return placed

    a, b = await asyncio.gather(place_and_confirm("pair-a", SUBS[5], "3", "250.00"),
                                place_and_confirm("pair-b", SUBS[6], "7", "200.00"))
    assert (a.client_order_id, a.key.account_number, a.quantity) == ("pair-a", SUBS[5], Decimal(3))
    assert (b.client_order_id, b.key.account_number, b.quantity) == ("pair-b", SUBS[6], Decimal(7))
    wire = {o["client_order_id"]: o for o in (await ctx.state())["orders"]}
    assert (wire["pair-a"]["account"], wire["pair-a"]["quantity"]) == (SUBS[5], "3")
    assert (wire["pair-b"]["account"], wire["pair-b"]["quantity"]) == (SUBS[6], "7")


async def test_ibkr_positions_of_250_position_account_page(ctx: Ctx) -> None:
    before = await ctx.stats()
    positions = await ctx.adapter.fetch_positions(key(BIG))
    assert len(positions) == 250
    assert len({p.key.instrument_id for p in positions}) == 250
    assert {"265598", "756733", "76792991", "107113386"} <= {p.key.instrument_id for p in positions}
    after = await ctx.stats()
    pages = {n: after.get(f"GET /v1/api/portfolio/{BIG}/positions/{n}", 0) - before.get(
        f"GET /v1/api/portfolio/{BIG}/positions/{n}", 0) for n in range(4)}
    assert pages == {0: 1, 1: 1, 2: 1, 3: 0}
    assert all(isinstance(p.quantity, Decimal) and p.market_price is not None for p in positions)


async def test_ibkr_duplicate_client_order_id_resolves_to_the_existing_order(ctx: Ctx) -> None:
    first = await ctx.adapter.create_order(order("dup-1", account=SUBS[2], kind=OrderType.LIMIT, limit="226.00"))
    again = await ctx.adapter.create_order(order("dup-1", account=SUBS[2], kind=OrderType.LIMIT, limit="226.00"))
    assert isinstance(first, Order) and isinstance(again, Order) and again.key == first.key  # "already registered"
    with pytest.raises(IdempotencyConflict):  # the id names another order than this one
        await ctx.adapter.create_order(order("dup-1", account=SUBS[2], kind=OrderType.LIMIT, limit="226.00",
                                             quantity="2"))
    coids = [o["client_order_id"] for o in (await ctx.state())["orders"]]
    assert coids.count("dup-1") == 1


async def test_ibkr_modify_then_cancel_working_order(ctx: Ctx) -> None:
    placed = await ctx.adapter.create_order(order("mod-1", account=SUBS[3], kind=OrderType.LIMIT, limit="225.00",
                                                  quantity="5", isin="US0378331005"))
    assert isinstance(placed, Order) and placed.instrument.broker_instrument_id == "265598"
    modified = await ctx.adapter.modify_order(placed.key, OrderUpdate(quantity=Decimal(8)))
    assert isinstance(modified, Order) and modified.quantity == Decimal(8)
    canceling = await ctx.adapter.cancel_order(placed.key)
    assert canceling.status in (OrderStatus.PENDING_CANCEL, OrderStatus.CANCELED)

    async def canceled() -> bool:
        return (await ctx.adapter.fetch_order(placed.key)).status is OrderStatus.CANCELED

    await until(canceled)


async def test_ibkr_square_off_places_opposite_order(ctx: Ctx) -> None:
    position = next(p for p in await ctx.adapter.fetch_positions(key(SUBS[1])) if p.quantity > 2)
    result = await ctx.adapter.square_off_position(position, Decimal(2), OrderType.MARKET, None, "sq-1")
    if isinstance(result, Confirmation):  # IBM: the sandbox session has no market data for it (o354)
        assert result.message_ids == ("o354",)
        result = await ctx.adapter.confirm_order(result.key, True)
    assert isinstance(result, Order)
    assert result.side is OrderSide.SELL and result.quantity == Decimal(2)
    assert result.instrument.broker_instrument_id == position.key.instrument_id


async def test_ibkr_logged_out_session_is_authentication_error(ctx: Ctx) -> None:
    own = await ctx.adapter.create_order(order(f"before-logout-{SUBS[0]}", account=SUBS[0]))
    assert isinstance(own, Order)  # this test's own order: it depends on no other test's
    await ctx.session(authenticated=False)
    try:
        with pytest.raises(AuthenticationError):
            await ctx.adapter.fetch_orders(key(SUBS[0]))
        assert ctx.adapter.status.name == "UNAUTHENTICATED"
        sent = (await ctx.stats()).get(f"POST /v1/api/iserver/account/{SUBS[0]}/orders", 0)
        with pytest.raises(AuthenticationError):
            await ctx.adapter.create_order(order("while-out", account=SUBS[0]))
        assert (await ctx.stats()).get(f"POST /v1/api/iserver/account/{SUBS[0]}/orders", 0) == sent
    finally:
        await ctx.session(authenticated=True)
    orders = await ctx.adapter.fetch_orders(key(SUBS[0]))  # a fresh session: empty first snapshot re-read
    assert ctx.adapter.status.name == "UP"
    assert any(o.key == own.key for o in orders)


async def test_ibkr_question_voided_by_another_order_is_confirmed_by_sending_again(ctx: Ctx) -> None:
    asked = await ctx.adapter.create_order(order("void-1", account=SUBS[7], kind=OrderType.LIMIT, limit="260"))
    assert isinstance(asked, Confirmation) and asked.message_ids == ("o163",)
    other = await ctx.adapter.create_order(order("void-2", account=SUBS[7]))  # IBKR drops the pending question
    assert isinstance(other, Order)
    before = await ctx.stats()
    placed = await ctx.adapter.confirm_order(asked.key, True)
    assert isinstance(placed, Order) and placed.client_order_id == "void-1"
    after = await ctx.stats()
    path = f"POST /v1/api/iserver/account/{SUBS[7]}/orders"
    assert after[path] - before[path] == 1  # sent again; its o163 was answered without asking the user twice
    assert [o["client_order_id"] for o in (await ctx.state())["orders"]].count("void-1") == 1


async def test_ibkr_question_voided_by_a_positions_read_is_confirmed_by_sending_again(ctx: Ctx) -> None:
    """IBKR voids a pending reply on any request that reaches the session, a read included (the
    venue models it): the adapter's confirmation recovers by sending the order again, once."""
    asked = await ctx.adapter.create_order(order("void-read-1", account=SUBS[9], kind=OrderType.LIMIT, limit="1"))
    assert isinstance(asked, Confirmation) and asked.message_ids == ("o163",)
    assert await ctx.adapter.fetch_positions(AccountKey(CONNECTION, SUBS[9]))  # a read reaches the session
    before = await ctx.stats()
    placed = await ctx.adapter.confirm_order(asked.key, True)
    assert isinstance(placed, Order) and placed.client_order_id == "void-read-1"
    after = await ctx.stats()
    assert after[f"POST /v1/api/iserver/account/{SUBS[9]}/orders"] - before[f"POST /v1/api/iserver/account/{SUBS[9]}/orders"] == 1
    assert [o["client_order_id"] for o in (await ctx.state())["orders"]].count("void-read-1") == 1


async def test_ibkr_order_beyond_the_buying_power_is_insufficient_funds(ctx: Ctx) -> None:
    """The venue's margin reject (IBKR's "…EQUITY WITH LOAN VALUE […] MUST EXCEED THE INITIAL MARGIN
    […]") reaches the caller as InsufficientFunds, and nothing is booked."""
    with pytest.raises(InsufficientFunds) as caught:
        await ctx.adapter.create_order(order("huge-bp", account=SUBS[2], quantity="61000"))
    assert "EQUITY WITH LOAN VALUE" in caught.value.message
    assert "huge-bp" not in [o["client_order_id"] for o in (await ctx.state())["orders"]]


async def test_ibkr_confirmation_expires(ctx: Ctx) -> None:
    ctx.adapter.confirmations.ttl = 0.1
    try:
        asked = await ctx.adapter.create_order(order("ttl-1", account=SUBS[7], kind=OrderType.LIMIT, limit="260"))
        assert isinstance(asked, Confirmation)
        await asyncio.sleep(0.15)
        with pytest.raises(OrderNotFound):
            await ctx.adapter.confirm_order(asked.key, True)
        assert "ttl-1" not in {o["client_order_id"] for o in (await ctx.state())["orders"]}
    finally:
        ctx.adapter.confirmations.ttl = 5.0


async def test_ibkr_lost_order_answer_is_reconciled_by_client_order_id(ctx: Ctx) -> None:
    path = f"/v1/api/iserver/account/{SUBS[9]}/orders"
    await ctx.control.post("/__sandbox__/faults", json={"path": path, "method": "POST", "after": True, "times": 1})
    result = await ctx.adapter.create_order(order("lost-1", account=SUBS[9], quantity="4"))
    assert isinstance(result, Order)
    assert result.client_order_id == "lost-1" and result.key.account_number == SUBS[9]
    assert [o["client_order_id"] for o in (await ctx.state())["orders"]].count("lost-1") == 1


async def test_ibkr_tickle_keeps_alive_and_notices_logout(ctx: Ctx) -> None:
    adapter = make_adapter(ctx.base_url, ctx.venue, tickle_interval=0.05, tickle_interval_min=0)
    count = 0

    async def tickles() -> int:
        return (await ctx.stats()).get("POST /v1/api/tickle", 0)

    start_count = await tickles()
    await adapter.start()
    try:
        async def ticked() -> bool:
            return await tickles() - start_count >= 3

        await until(ticked)
        await ctx.session(authenticated=False)

        async def noticed() -> bool:
            return adapter.status.name == "UNAUTHENTICATED"

        await until(noticed)
    finally:
        await ctx.session(authenticated=True)
        await adapter.close()
    count = await tickles()
    await asyncio.sleep(0.2)
    assert await tickles() == count  # stopped by close()


async def test_ibkr_session_replaced_behind_the_adapter_still_reads_right_orders(ctx: Ctx) -> None:
    own = await ctx.adapter.create_order(order(f"replaced-{SUBS[5]}", account=SUBS[5], quantity="1"))
    assert isinstance(own, Order)  # this test's own order: it depends on no other test's
    await ctx.adapter.fetch_orders(key(SUBS[5]))  # the adapter believes SUBS[5] is selected
    await ctx.session(authenticated=False)
    await ctx.session(authenticated=True)  # a new session: master selected, no pre-flight, cold snapshot
    orders = await ctx.adapter.fetch_orders(key(SUBS[5]))
    assert any(o.key == own.key for o in orders)
    assert all(o.key.account_number == SUBS[5] for o in orders)
    assert {o.key.broker_order_id for o in orders} == (await _venue_orders_by_account(ctx)).get(SUBS[5], set())
