"""The IBKR sandbox's wire format and quirks, spoken to directly over HTTP."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest_asyncio
from ibkr_support import MASTER, SUBS, make_adapter, until

from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner


@pytest_asyncio.fixture(scope="module")
async def wire():
    config = EngineConfig.fast()
    config.fill_steps = 3
    runner = SandboxRunner(["ibkr"], config=config)
    base = (await runner.start())["ibkr"]
    async with httpx.AsyncClient(base_url=base) as client:
        _CONTROL[id(client)] = base.split("/v1/api/")[0] + "/__sandbox__/ibkr/"
        await client.post(_control(client, "pacing"), json={"enabled": False})
        yield client
    await runner.stop()


_CONTROL: dict[int, str] = {}


def _control(client: httpx.AsyncClient, name: str) -> str:
    """The absolute URL of a control route (they live beside the wire API, not under it)."""
    return _CONTROL[id(client)] + name


def _order(**over: object) -> dict:
    return {"orders": [{"conid": 265598, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1, **over}]}


async def test_ibkr_sandbox_preflight_and_empty_first_snapshot(wire: httpx.AsyncClient) -> None:
    assert (await wire.get("iserver/account/orders")).json() == {"orders": [], "snapshot": False}  # no pre-flight
    accounts = (await wire.get("iserver/accounts")).json()
    assert accounts["selectedAccount"] == MASTER and accounts["allowFeatures"]["allowFA"] is True
    assert "All" in accounts["aliases"] and "Growth_Equal" in accounts["groups"]
    assert (await wire.get("iserver/account/orders")).json() == {"orders": [], "snapshot": False}  # warm-up
    assert (await wire.get("iserver/account/orders")).json()["snapshot"] is True
    assert (await wire.get("iserver/account/orders", params={"force": "true"})).json()["orders"] == []


async def test_ibkr_sandbox_switch_answers(wire: httpx.AsyncClient) -> None:
    assert (await wire.post("iserver/account", json={"acctId": SUBS[0]})).json() == {"set": True, "acctId": SUBS[0]}
    assert (await wire.post("iserver/account", json={"acctId": SUBS[0]})).json() == {"success": "Account already set"}
    bad = await wire.post("iserver/account", json={"acctId": "DU0000000"})
    assert (bad.status_code, bad.json()) == (500, {"error": "Invalid account ID"})
    assert (await wire.post("iserver/account", json={})).status_code == 400


async def test_ibkr_sandbox_reply_chain_dropped_by_interleaving_order(wire: httpx.AsyncClient) -> None:
    asked = (await wire.post(f"iserver/account/{SUBS[1]}/orders",
                             json=_order(orderType="LMT", price=260.0, cOID="chain-1"))).json()
    assert asked[0]["messageIds"] == ["o163"]
    placed = (await wire.post(f"iserver/account/{SUBS[2]}/orders", json=_order(cOID="chain-2"))).json()
    assert placed[0]["order_id"].isdigit()  # a string, as IBKR sends it
    late = await wire.post(f"iserver/reply/{asked[0]['id']}", json={"confirmed": True})
    assert late.status_code == 400 and late.json()["error"].startswith("reply id not found")
    dup = await wire.post(f"iserver/account/{SUBS[2]}/orders", json=_order(cOID="chain-2"))
    assert dup.status_code == 200 and "Local order ID=chain-2 is already registered" in dup.json()["error"]


async def test_ibkr_sandbox_partial_fills_then_filled(wire: httpx.AsyncClient) -> None:
    await wire.get("iserver/accounts")
    await wire.post("iserver/account", json={"acctId": SUBS[3]})
    placed = (await wire.post(f"iserver/account/{SUBS[3]}/orders", json=_order(quantity=9, cOID="part-1"))).json()
    order_id = int(placed[0]["order_id"])
    seen: list[tuple[str, str]] = []

    async def filled() -> bool:
        items = (await wire.get("iserver/account/orders")).json()["orders"]
        mine = [i for i in items if i["orderId"] == order_id]
        if mine:
            seen.append((mine[0]["status"], mine[0]["sizeAndFills"]))
        return bool(mine) and mine[0]["status"] == "Filled"

    await until(filled)
    assert ("Submitted", "3/9") in seen or ("Submitted", "6/9") in seen
    assert seen[-1] == ("Filled", "9")
    status = (await wire.get(f"iserver/account/order/status/{order_id}")).json()
    assert status["order_status"] == "Filled" and status["order_id"] == order_id
    await wire.post("iserver/account", json={"acctId": SUBS[4]})
    other = await wire.get(f"iserver/account/order/status/{order_id}")
    assert other.status_code == 503  # order status follows the selected account


async def test_ibkr_sandbox_logged_out_answers_401(wire: httpx.AsyncClient) -> None:
    await wire.post(_control(wire, "session"), json={"authenticated": False})
    try:
        refused = await wire.get("iserver/accounts")
        assert (refused.status_code, refused.json()) == (401, {"error": "not authenticated", "statusCode": 401})
        assert (await wire.post("iserver/auth/status")).json()["authenticated"] is False
        assert (await wire.post("tickle")).json()["iserver"]["authStatus"]["authenticated"] is False
    finally:
        await wire.post(_control(wire, "session"), json={"authenticated": True})
    assert (await wire.get("iserver/accounts")).status_code == 200


async def test_ibkr_sandbox_over_https_with_self_signed_certificate() -> None:
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast(), venue_options={"ibkr": {"tls": True}})
    base = (await runner.start())["ibkr"]
    try:
        assert base.startswith("https://")
        venue = runner.venue("ibkr")
        assert venue.options["verify_tls"] is False
        adapter = make_adapter(base, venue)
        try:
            accounts = await asyncio.wait_for(adapter.fetch_accounts(), 10)
            assert len(accounts) == 1 + len(SUBS)
        finally:
            await adapter.close()
    finally:
        await runner.stop()


async def _state(client: httpx.AsyncClient) -> dict:
    return (await client.get(_CONTROL[id(client)].replace("ibkr/", "state"))).json()


async def test_ibkr_sandbox_passive_far_limit_asks_o163_then_rests(wire: httpx.AsyncClient) -> None:
    account = SUBS[7]
    await wire.get("iserver/accounts")
    placed = []
    for side, price in (("BUY", 1.0), ("SELL", 10_000.0)):  # the usual "never fills" test orders
        asked = (await wire.post(f"iserver/account/{account}/orders",
                                 json=_order(orderType="LMT", price=price, side=side, tif="GTC",
                                             cOID=f"far-{side}"))).json()
        assert isinstance(asked, list) and asked[0]["messageIds"] == ["o163"], asked
        accepted = (await wire.post(f"iserver/reply/{asked[0]['id']}", json={"confirmed": True})).json()
        placed.append(int(accepted[0]["order_id"]))
    await wire.post("iserver/account", json={"acctId": account})
    await asyncio.sleep(0.3)  # far past the fast engine's fill delay: they would have filled by now
    items = []

    async def listed() -> bool:
        items[:] = [i for i in (await wire.get("iserver/account/orders")).json()["orders"] if i["orderId"] in placed]
        return len(items) == 2

    await until(listed)
    assert {i["status"] for i in items} <= {"PreSubmitted", "Submitted"} and all(i["filledQuantity"] == 0 for i in items)
    # an aggressive limit past the market by more than the cap is what IBKR refuses outright
    refused = (await wire.post(f"iserver/account/{account}/orders",
                               json=_order(orderType="LMT", price=10_000.0, cOID="far-aggressive"))).json()
    assert refused["error"].startswith("We cannot accept an order at the limit price you selected")


async def test_ibkr_sandbox_reply_voided_by_a_positions_read_but_not_by_a_tickle(wire: httpx.AsyncClient) -> None:
    account = SUBS[8]
    far = _order(orderType="LMT", price=1.0, tif="GTC", cOID="void-1")
    asked = (await wire.post(f"iserver/account/{account}/orders", json=far)).json()
    assert (await wire.get(f"portfolio/{account}/positions/0")).status_code == 200  # any request reaches the session
    late = await wire.post(f"iserver/reply/{asked[0]['id']}", json={"confirmed": True})
    assert late.status_code == 400 and late.json()["error"] == f"reply id not found: '{asked[0]['id']}'"
    asked = (await wire.post(f"iserver/account/{account}/orders", json=_order(orderType="LMT", price=1.0, tif="GTC",
                                                                            cOID="void-2"))).json()
    await wire.post("tickle")  # the keep-alive leaves the chain alone
    kept = (await wire.post(f"iserver/reply/{asked[0]['id']}", json={"confirmed": True})).json()
    assert kept[0]["order_id"].isdigit()


async def test_ibkr_sandbox_refuses_an_order_beyond_the_buying_power(wire: httpx.AsyncClient) -> None:
    account = SUBS[0]  # 100 000 USD cash and a few positions
    cash = (await _state(wire))["accounts"][account]["cash"]
    huge = (await wire.post(f"iserver/account/{account}/orders",
                            json=_order(quantity=61_000, cOID="huge-1"))).json()  # 61 000 AAPL ≈ 14 million USD
    assert huge["error"].startswith("Order rejected - reason:YOUR ORDER IS NOT ACCEPTED.")
    assert "EQUITY WITH LOAN VALUE" in huge["error"] and "MUST EXCEED THE INITIAL MARGIN" in huge["error"]
    await asyncio.sleep(0.2)
    assert (await _state(wire))["accounts"][account]["cash"] == cash  # nothing was booked
    ok = (await wire.post(f"iserver/account/{account}/orders", json=_order(quantity=10, cOID="small-1"))).json()
    assert ok[0]["order_id"].isdigit()  # a small order still goes through


async def test_ibkr_sandbox_stock_search_results_carry_no_bond_keys(wire: httpx.AsyncClient) -> None:
    [aapl] = (await wire.get("iserver/secdef/search", params={"symbol": "AAPL"})).json()
    assert aapl["conid"] == "265598" and aapl["sections"] == [{"secType": "STK"}]
    assert "issuers" not in aapl and "bondid" not in aapl


async def test_ibkr_sandbox_ledger_gives_the_masters_cash(wire: httpx.AsyncClient) -> None:
    from gateway.brokers.ibkr.parsing import parse_ledger_cash
    from gateway.domain import Money

    ledger = (await wire.get(f"portfolio/{MASTER}/ledger")).json()
    assert set(ledger) == {"USD", "BASE"} and ledger["USD"]["key"] == "LedgerList"
    cash = (await _state(wire))["accounts"][MASTER]["cash"]
    assert parse_ledger_cash(ledger, "USD") == Money(Decimal(cash), "USD")


async def test_ibkr_sandbox_switches_to_an_allocation_group_and_to_all_and_lists_their_orders(
        wire: httpx.AsyncClient) -> None:
    """The FA lesson's way to a group's orders: switch the session to the group, then read the live
    orders; ``All`` shows every order of the book, each under its own account."""
    await wire.get("iserver/accounts")
    await wire.get("iserver/account/orders")  # past the empty first snapshot
    switched = await wire.post("iserver/account", json={"acctId": "Growth_Equal"})
    assert switched.status_code == 200 and switched.json() == {"set": True, "acctId": "Growth_Equal"}
    assert (await wire.get("iserver/accounts")).json()["selectedAccount"] == "Growth_Equal"
    group = (await wire.get("iserver/account/orders")).json()["orders"]
    assert group and {(o["acct"], o["account"]) for o in group} == {("Growth_Equal", "Growth_Equal")}
    assert any(o.get("order_ref") == "rebal-Growth_Equal" for o in group)

    assert (await wire.post("iserver/account", json={"acctId": "All"})).json() == {"set": True, "acctId": "All"}
    every = (await wire.get("iserver/account/orders")).json()["orders"]
    accounts = {o["account"] for o in every}
    assert "Growth_Equal" in accounts and len(accounts & set(SUBS)) >= 10
    assert all(o["acct"] == (o["account"] if o["account"] in (MASTER, *SUBS) else MASTER) for o in every)

    refused = await wire.post("iserver/account", json={"acctId": "No_Such_Group"})
    assert refused.status_code == 500 and refused.json() == {"error": "Invalid account ID"}
    await wire.post("iserver/account", json={"acctId": MASTER})
