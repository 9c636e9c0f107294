"""The Dashboard document over lemon: seeded data, exact money, and a constant upstream budget."""

from __future__ import annotations

from decimal import Decimal

import httpx

from gateway.sandbox.lemon import API_KEY
from tests.conftest import LARGE_KEY, MAIN_KEY
from tests.harness import GraphQLClient, RunningGateway, SandboxControl


async def _wire(lemon_url: str, path: str) -> dict:
    async with httpx.AsyncClient() as http:
        response = await http.get(lemon_url + path, headers={"Authorization": f"Bearer {API_KEY}"})
        response.raise_for_status()
        return response.json()


async def test_dashboard_returns_seeded_account_with_exact_eur_amounts(gql: GraphQLClient, lemon_url: str,
                                                                     lemon_control: SandboxControl) -> None:
    await lemon_control.price("DE0008232125", "6.6420")
    data = await gql.data("Dashboard")
    (connection,) = data["connections"]
    assert connection["name"] == "lemon" and connection["broker"] == "LEMON" and connection["status"] == "UP"
    (account,) = connection["accounts"]
    wire_account = (await _wire(lemon_url, "account"))["results"]
    assert account["accountNumber"] == wire_account["account_id"]
    assert account["displayName"] == "Erika Mustermann"
    assert account["cash"] == {"amount": str((Decimal(wire_account["cash_to_invest"]) / 10000).quantize(Decimal("0.01"))),
                              "currency": "EUR"}  # an amount: the currency's minor unit

    wire_positions = {p["isin"]: p for p in (await _wire(lemon_url, "positions?limit=100"))["results"]}
    positions = {p["instrument"]["isin"]: p for p in account["positions"]["nodes"]}
    assert set(positions) >= {"DE0008232125", "US19260Q1076", "US0378331005", "IE00B4L5Y983"}
    assert set(positions) == set(wire_positions)
    for isin, position in positions.items():
        wire = wire_positions[isin]
        assert Decimal(position["quantity"]) == wire["quantity"]
        assert Decimal(position["averagePrice"]["amount"]) == Decimal(wire["buy_price_avg"]) / 10000
        assert Decimal(position["marketPrice"]["amount"]) == Decimal(wire["estimated_price"]) / 10000
        assert Decimal(position["marketValue"]["amount"]) == (Decimal(wire["estimated_price_total"]) / 10000).quantize(
            Decimal("0.01"))
        assert position["averagePrice"]["currency"] == "EUR"
    lufthansa = positions["DE0008232125"]
    assert lufthansa["marketPrice"]["amount"] == "6.6420" and lufthansa["instrument"]["name"] == "DEUTSCHE LUFTHANSA AG"
    assert lufthansa["instrument"]["symbol"] == "LHA"  # the ticker, from lemon's market data

    open_orders = account["orders"]["nodes"]
    tesla = [o for o in open_orders if o["instrument"]["isin"] == "US88160R1014"]
    assert tesla and tesla[0]["status"] == "SUBMITTED" and tesla[0]["brokerStatus"] == "open"
    assert tesla[0]["limitPrice"] == {"amount": "150.0000", "currency": "EUR"}
    assert all(o["status"] not in ("FILLED", "CANCELED", "EXPIRED", "REJECTED") for o in open_orders)


_FEW_FIELDS = """
query DashboardOneField {
  connections { accounts { positions(first: 100) { nodes { quantity } }
    orders(first: 50, filter: {status: [SUBMITTED]}) { nodes { status } } } }
}
"""


async def _cost(client: GraphQLClient, control: SandboxControl, query: str | None = None) -> tuple[int, dict]:
    await control.reset()
    if query is None:
        body = await client.run("Dashboard", {"positionsFirst": 100})
    else:
        body = (await client.post(query)).json()
    assert not body.get("errors"), body["errors"]
    return await control.total(), body["data"]


async def test_dashboard_upstream_calls_do_not_grow_with_positions_or_fields(
        gateway: RunningGateway, lemon_control: SandboxControl) -> None:
    main, large = gateway.client(MAIN_KEY), gateway.client(LARGE_KEY)
    await _cost(main, lemon_control)  # warm: the adapter learns its account id once per connection
    await _cost(large, lemon_control)

    small_calls, small = await _cost(main, lemon_control)
    large_calls, big = await _cost(large, lemon_control)
    small_positions = small["connections"][0]["accounts"][0]["positions"]
    big_positions = big["connections"][0]["accounts"][0]["positions"]
    assert small_positions["totalCount"] < 10 and big_positions["totalCount"] == 200
    assert len(big_positions["nodes"]) == 100 and big_positions["pageInfo"]["hasNextPage"]
    one_field_calls, _ = await _cost(large, lemon_control, _FEW_FIELDS)
    assert small_calls == large_calls == one_field_calls == 3  # GET account, positions, orders


async def test_positions_pages_follow_cursors_without_gaps(gateway: RunningGateway) -> None:
    client = gateway.client(LARGE_KEY)
    seen: list[str] = []
    after = None
    while True:
        data = await client.data("Positions", {"first": 30, "after": after})
        page = data["positions"]
        seen.extend(n["instrument"]["isin"] for n in page["nodes"])
        assert page["totalCount"] == 200
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 200 and len(set(seen)) == 200
