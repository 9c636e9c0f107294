"""Issue 5 through the gateway: the operation documents of ``queries/`` over HTTP against a gateway
whose connections point at the Alice Blue venue (clients 912444 and 912445) and, beside it, the
lemon venue. Every test gets fresh venues, so the seeded books are known."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gateway.config import ApiKeyConfig, GatewayConfig
from gateway.sandbox.aliceblue import USERS
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner
from tests.harness import GraphQLClient, RunningGateway, SandboxControl, eventually, running_gateway

EMPTY_KEY = "test-key-aliceblue-empty"
P = "/open-api/od/v1/"


@dataclass
class Env:
    gateway: RunningGateway
    gql: GraphQLClient  # development profile, no key: every connection
    control: SandboxControl  # the Alice Blue venue's
    base_url: str  # the Alice Blue wire API

    async def positions(self, symbol: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        """``(symbol, product)`` → position node of the Alice Blue connection (Positions document)."""
        flt = {"symbol": symbol} if symbol else None
        nodes = (await self.gql.data("Positions", {"first": 100, "filter": flt}))["positions"]["nodes"]
        return {(n["instrument"]["symbol"], n["product"]): n for n in nodes if n["account"]["broker"] == "ALICEBLUE"}

    async def held(self, key: str, product: str) -> str | None:
        """The venue's own quantity of ``key`` in ``product`` for client 912444."""
        for p in (await self.control.state())["accounts"]["912444"]["positions"]:
            if p["instrument"] == key and p["product"] == product:
                return str(p["quantity"])
        return None

    async def account_id(self) -> str:
        data = await self.gql.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1})
        return next(a["id"] for c in data["connections"] if c["name"] == "aliceblue" for a in c["accounts"])


def _config(runner: SandboxRunner) -> GatewayConfig:
    connections: dict[str, Any] = {}
    for name, url in runner.base_urls.items():
        venue = runner.venue(name)
        connections[name] = {"broker": name, "base_url": url, "credentials": dict(venue.credentials),
                             "options": dict(venue.options), "timeout": 5.0, "read_retries": 1,
                             "retry_max_wait": 0.1}
    empty = USERS["912445"]
    connections["aliceblue-empty"] = {**connections["aliceblue"], "credentials": {
        "user_id": empty.user_id, "auth_code": empty.auth_code, "api_secret": empty.api_secret}}
    return GatewayConfig.model_validate({
        "profile": "development", "connections": connections,
        "api_keys": [{"name": "empty", "sha256": ApiKeyConfig.hash_key(EMPTY_KEY), "connections": ["aliceblue-empty"]}],
    })


@pytest_asyncio.fixture
async def env() -> AsyncIterator[Env]:
    runner = SandboxRunner(["aliceblue", "lemon"], config=EngineConfig.fast())
    await runner.start()
    try:
        async with running_gateway(_config(runner)) as gateway:
            url = runner.base_urls["aliceblue"]
            yield Env(gateway, gateway.client(), SandboxControl(url), url)
    finally:
        await runner.stop()


# -- reads ----------------------------------------------------------------------------------------
async def test_dashboard_shows_holdings_and_positions_beside_lemon(env: Env) -> None:
    body = await env.gql.run("Dashboard")
    assert not body.get("errors"), body["errors"]
    connections = {c["name"]: c for c in body["data"]["connections"]}
    assert set(connections) == {"aliceblue", "aliceblue-empty", "lemon"}
    assert {c["status"] for c in connections.values()} == {"UP"}
    assert connections["lemon"]["accounts"][0]["positions"]["totalCount"] >= 4

    ab = connections["aliceblue"]
    assert ab["broker"] == "ALICEBLUE"
    (account,) = ab["accounts"]
    assert account["accountNumber"] == "912444" and account["displayName"] == "ANANYA RAO"
    assert account["cash"] == {"amount": "500000.00", "currency": "INR"} and account["baseCurrency"] == "INR"
    nodes = account["positions"]["nodes"]
    got = {(n["instrument"]["symbol"], n["product"]): Decimal(n["quantity"]) for n in nodes}
    venue = {(p["instrument"], p["product"]): Decimal(p["quantity"])
             for p in (await env.control.state())["accounts"]["912444"]["positions"]}
    assert got == venue and account["positions"]["totalCount"] == len(venue) == 9
    assert got[("RELIANCE", "LONGTERM")] == 55 and got[("INFY", "MTF")] == 10
    assert got[("ETERNAL", "INTRADAY")] == 100 and got[("SBIN", "INTRADAY")] == -50
    assert {n["product"] for n in nodes} == {"LONGTERM", "MTF", "INTRADAY"}
    reliance = next(n for n in nodes if n["instrument"]["symbol"] == "RELIANCE" and n["product"] == "LONGTERM")
    assert reliance["instrument"] == {"symbol": "RELIANCE", "isin": "INE002A01018", "name": "RELIANCE",
                                      "exchange": "NSE", "currency": "INR", "brokerInstrumentId": "2885"}
    assert reliance["averagePrice"] == {"amount": "1204.35", "currency": "INR"}
    assert reliance["marketPrice"] == {"amount": "1290.30", "currency": "INR"}
    assert reliance["marketValue"] == {"amount": f"{Decimal('1290.3') * 55:.2f}", "currency": "INR"}

    empty = connections["aliceblue-empty"]["accounts"][0]
    assert empty["accountNumber"] == "912445"
    assert empty["positions"]["totalCount"] == 0 and empty["orders"]["totalCount"] == 0


async def test_positions_carry_settlement_quantities_under_the_broker_names(env: Env) -> None:
    positions = await env.positions()
    settlement = {key: {s["kind"]: Decimal(s["quantity"]) for s in node["settlement"]}
                  for key, node in positions.items()}
    assert settlement[("RELIANCE", "LONGTERM")] == {
        "dpQuantity": 40, "t1Quantity": 5, "collateralQuantity": 10, "authorizedQuantity": 0, "sellableQty": 45,
        "totalQuantity": 55}
    assert settlement[("RELIANCE", "INTRADAY")] == {
        "dayBuyQuantity": 10, "daySellQuantity": 0, "overnightQuantity": 0, "netQuantity": 10}
    infy_mtf = settlement[("INFY", "MTF")]  # bought yesterday under MTF: t1 in holdings, overnight in positions
    assert infy_mtf["t1Quantity"] == 10 and infy_mtf["overnightQuantity"] == 10 and infy_mtf["dpQuantity"] == 0
    assert positions[("INFY", "MTF")]["quantity"] == "10"


async def test_empty_order_book_is_an_empty_orders_list_without_errors(env: Env) -> None:
    await env.control.reset()
    body = await env.gateway.client(EMPTY_KEY).run("Orders")
    assert "errors" not in body or not body["errors"], body
    assert body["data"]["orders"]["totalCount"] == 0 and body["data"]["orders"]["edges"] == []
    assert (await env.control.stats()).get(f"GET {P}orders/book") == 1  # EC916 came from the broker


# -- orders ---------------------------------------------------------------------------------------
def _order(account: str, **kw: Any) -> dict[str, Any]:
    return {"input": {"accountId": account, "instrument": {"symbol": "ACC", "exchange": "NSE"}, "side": "BUY",
                      "type": "LIMIT", "quantity": "30", "limitPrice": "2100.10", **kw}}


async def test_off_tick_price_is_order_rejected_with_the_broker_reason(env: Env) -> None:
    result = (await env.gql.data("PlaceOrder", _order(await env.account_id(), limitPrice="2108.65")))["placeOrder"]
    assert result["__typename"] == "OrderRejected", result
    assert result["code"] == "REJECTED" and result["brokerCode"] == "REJECTED"
    assert result["brokerMessage"] == "ORA:Price 2108.65 is not a multiple of tick size 0.10 "
    [booked] = (await env.control.state())["orders"]
    assert booked["status"] == "rejected" and booked["client_order_id"]
    on_tick = (await env.gql.data("PlaceOrder", _order(await env.account_id(), limitPrice="2108.60")))["placeOrder"]
    assert on_tick["__typename"] == "OrderPlaced" and on_tick["order"]["brokerStatus"] == "OPEN"


async def test_margin_shortfall_is_insufficient_funds_with_the_rms_reason(env: Env) -> None:
    variables = _order(await env.account_id(), instrument={"symbol": "TCS"}, quantity="200", limitPrice="4132.10")
    result = (await env.gql.data("PlaceOrder", variables))["placeOrder"]
    assert result["__typename"] == "OrderRejected" and result["code"] == "INSUFFICIENT_FUNDS", result
    assert result["brokerCode"] == "REJECTED" and result["brokerMessage"].startswith("RMS:Margin Exceeds,Required:826420.00")


@pytest.mark.parametrize("quantity", ["0", "-3"])
async def test_non_positive_quantity_is_invalid_input_before_any_upstream_call(env: Env, quantity: str) -> None:
    account = await env.account_id()
    await env.control.reset()
    result = (await env.gql.data("PlaceOrder", _order(account, quantity=quantity)))["placeOrder"]
    assert result["__typename"] == "InvalidInput" and result["field"] == "quantity", result
    assert await env.control.total() == 0
    assert (await env.control.state())["orders"] == []


async def test_intraday_product_is_placed_as_intraday(env: Env) -> None:
    variables = _order(await env.account_id(), instrument={"isin": "INE758T01015"}, type="MARKET", limitPrice=None,
                       quantity="5", product="INTRADAY")
    result = (await env.gql.data("PlaceOrder", variables))["placeOrder"]
    assert result["__typename"] == "OrderPlaced", result
    order = result["order"]
    assert order["instrument"] == {"isin": "INE758T01015", "symbol": "ETERNAL"} and order["clientOrderId"]

    async def filled() -> bool:
        return (await env.gql.data("Order", {"id": order["id"]}))["order"]["status"] == "FILLED"

    await eventually(filled)
    assert (await env.gql.data("Order", {"id": order["id"]}))["order"]["product"] == "INTRADAY"
    assert await env.held("ETERNAL", "INTRADAY") == "105"
    assert await env.held("ETERNAL", "LONGTERM") == "150"
    positions = await env.positions("ETERNAL")
    assert positions[("ETERNAL", "INTRADAY")]["quantity"] == "105"
    assert positions[("ETERNAL", "LONGTERM")]["quantity"] == "150"


# -- square-off and conversion --------------------------------------------------------------------
async def _square_off(env: Env, symbol: str, product: str, **kw: Any) -> dict[str, Any]:
    position = (await env.positions(symbol))[(symbol, product)]
    variables = {"input": {"positionId": position["id"], **kw}}
    return (await env.gql.data("SquareOffPosition", variables))["squareOffPosition"]


async def test_square_off_uses_the_native_sqroff_and_flattens_the_position(env: Env) -> None:
    await env.control.reset()
    result = await _square_off(env, "ETERNAL", "INTRADAY")
    assert result["__typename"] == "OrderPlaced", result
    assert result["order"]["side"] == "SELL" and result["order"]["quantity"] == "100"
    assert result["order"]["type"] == "MARKET" and result["order"]["clientOrderId"] is None
    await eventually(lambda: _is(env, "ETERNAL", "INTRADAY", "0"))
    assert await env.held("ETERNAL", "LONGTERM") == "150"
    stats = await env.control.stats()
    assert stats.get(f"POST {P}orders/positions/sqroff") == 1 and f"POST {P}orders/placeorder" not in stats
    partial = await _square_off(env, "IDEA", "LONGTERM", quantity="6")
    assert partial["__typename"] == "OrderPlaced" and partial["order"]["quantity"] == "6"
    await eventually(lambda: _is(env, "IDEA", "LONGTERM", "30"))


async def _is(env: Env, key: str, product: str, quantity: str) -> bool:
    return await env.held(key, product) == quantity


async def test_convert_position_moves_the_day_quantity(env: Env) -> None:
    reliance = (await env.positions("RELIANCE"))[("RELIANCE", "INTRADAY")]
    variables = {"input": {"positionId": reliance["id"], "toProduct": "LONGTERM", "quantity": "4"}}
    result = (await env.gql.data("ConvertPosition", variables))["convertPosition"]
    assert result["__typename"] == "PositionConverted", result
    assert result["position"]["product"] == "LONGTERM" and result["position"]["quantity"] == "59"
    assert await env.held("RELIANCE", "INTRADAY") == "6" and await env.held("RELIANCE", "LONGTERM") == "59"
    # back beyond the day's converted quantity: the broker refuses (EC869), nothing moves
    longterm = (await env.positions("RELIANCE"))[("RELIANCE", "LONGTERM")]
    variables = {"input": {"positionId": longterm["id"], "toProduct": "INTRADAY", "quantity": "10"}}
    refused = (await env.gql.data("ConvertPosition", variables))["convertPosition"]
    assert refused["__typename"] == "OrderRejected" and refused["brokerCode"] == "EC869", refused
    assert refused["brokerMessage"] == "Insufficient buy quantity available for conversion."
    assert await env.held("RELIANCE", "LONGTERM") == "59"
    assert (await env.control.stats())[f"POST {P}conversion"] == 2


# -- square-off whose answer is lost --------------------------------------------------------------
async def test_lost_square_off_answer_is_reconciled_to_the_new_order(env: Env) -> None:
    first = await _square_off(env, "SBIN", "INTRADAY", quantity="20")  # an identical, older order in the book
    assert first["__typename"] == "OrderPlaced", first
    await eventually(lambda: _is(env, "SBIN", "INTRADAY", "-30"))
    await env.control.reset()
    await env.control.fault(after=True, path=f"{P}orders/positions/sqroff", method="POST", times=1)
    result = await _square_off(env, "SBIN", "INTRADAY", quantity="20")
    assert result["__typename"] == "OrderPlaced", result
    assert result["order"]["side"] == "BUY" and result["order"]["quantity"] == "20"
    [older, booked] = (await env.control.state())["orders"]
    assert older["id"] == first["order"]["brokerOrderId"]
    assert result["order"]["brokerOrderId"] == booked["id"] != older["id"] and booked["instrument"] == "SBIN"
    assert (await env.control.stats())[f"POST {P}orders/positions/sqroff"] == 1  # never sent twice
    await eventually(lambda: _is(env, "SBIN", "INTRADAY", "-10"))


async def test_lost_square_off_answer_with_nothing_booked_is_outcome_unknown(env: Env) -> None:
    await env.control.fault(status=503, path=f"{P}orders/positions/sqroff", method="POST", times=1)
    result = await _square_off(env, "SBIN", "INTRADAY")
    assert result["__typename"] == "OrderOutcomeUnknown" and result["code"] == "OUTCOME_UNKNOWN", result
    assert result["clientOrderId"]
    assert (await env.control.state())["orders"] == []
    assert (await env.control.stats())[f"POST {P}orders/positions/sqroff"] == 1


async def test_lost_square_off_answer_with_two_matching_orders_is_outcome_unknown(env: Env) -> None:
    """While the gateway's square-off answer is held back, the same square-off arrives from
    elsewhere (the broker's web terminal): two new orders match, so no guess is made."""
    await env.control.fault(after=True, delay=0.6, path=f"{P}orders/positions/sqroff", method="POST", times=1)
    position = (await env.positions("ETERNAL"))[("ETERNAL", "INTRADAY")]
    request = asyncio.create_task(env.gql.data("SquareOffPosition", {
        "input": {"positionId": position["id"], "quantity": "40"}}))
    await eventually(lambda: _orders_booked(env, 1))
    await _direct_square_off(env, "ETERNAL", 40)
    result = (await request)["squareOffPosition"]
    assert result["__typename"] == "OrderOutcomeUnknown", result
    assert "2 new orders" in result["message"]
    assert len((await env.control.state())["orders"]) == 2


async def _orders_booked(env: Env, n: int) -> bool:
    return len((await env.control.state())["orders"]) >= n


async def _direct_square_off(env: Env, key: str, quantity: int) -> None:
    """The same square-off sent straight to the venue's wire API, with a session of its own."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        login = await http.post(env.base_url + "vendor/getUserDetails", json={"checkSum": USERS["912444"].checksum})
        session = login.json()["userSession"]
        item = {"exchange": "NSE", "symbol": f"{key}-EQ", "quantity": str(quantity), "price": "0",
                "product": "INTRADAY", "transactionType": "SELL", "orderType": "MKT", "triggerPrice": "", "ret": "DAY",
                "disclosedQuantity": "", "mktProtection": "", "target": "", "stopLoss": "", "trailingStopLoss": "",
                "orderComplexity": "REGULAR", "source": "WEB", "instrumentId": "5097", "deviceNumber": "web"}
        answer = await http.post(env.base_url + "orders/positions/sqroff", json=[item],
                                 headers={"Authorization": f"Bearer {session}"})
        assert answer.json()["result"][0]["brokerOrderId"], answer.text

