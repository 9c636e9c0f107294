"""The ETNA venue answers in the documented shapes (fixtures/, from the wire reference), including
the preview / syncorders endpoints, the account balance, the JSON error envelope of unknown routes,
and the buying-power reject."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from etna_harness import Etna, eventually

from tests.wire_shape import assert_same_shape

FIXTURES = Path(__file__).parent / "fixtures"
#: ETNA's execution fields appear once an order left PendingNew (the get-order example has them);
#: ``Description`` / ``Comment`` on rejected and done-for-day orders; ``ExecId`` once filled
_LIFE = {"Exchange", "ExecutionVenue", "ExecBrocker", "Description", "Comment", "ExecId"}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="module")
async def etna() -> AsyncIterator[Etna]:
    venue = await Etna().start()
    yield venue
    await venue.stop()


@pytest.fixture(scope="module")
async def headers(etna: Etna) -> dict[str, str]:
    creds = etna.venue.credentials
    r = await etna.http.post(etna.base_url + "token", headers={
        "Et-App-Key": creds["app_key"], "Username": creds["username"], "Password": creds["password"]})
    return {"Et-App-Key": creds["app_key"], "Authorization": f"Bearer {r.json()['Token']}"}


async def _call(etna: Etna, headers: dict[str, str], method: str, path: str, body: Any = None,
                **params: Any) -> httpx.Response:
    return await etna.http.request(method, etna.base_url + path, headers=headers, json=body, params=params)


async def test_read_answers_match_the_fixtures(etna: Etna, headers: dict[str, str]) -> None:
    assert_same_shape(fixture("post_token.response.json"), (await etna.http.post(etna.base_url + "token", headers={
        "Et-App-Key": headers["Et-App-Key"], "Username": etna.venue.credentials["username"],
        "Password": etna.venue.credentials["password"]})).json())
    assert_same_shape(fixture("get_user_accounts.response.json"),
                      (await _call(etna, headers, "GET", "v1.0/users/@me/accounts")).json())
    paged = (await _call(etna, headers, "GET", "v1.0/accounts/6303/positions", pageNumber=0, pageSize=10,
                         sortField="Id", desc="true")).json()
    assert_same_shape(fixture("get_positions.paged.response.json"), paged)
    orders = (await _call(etna, headers, "GET", "v1.0/accounts/6303/orders", pageNumber=0, pageSize=20,
                          sortField="Id", desc="true")).json()
    documented = fixture("get_orders.response.json")
    filled_doc, done_doc = documented["Result"]  # the example's two items: Filled, DoneForDay
    assert_same_shape({**documented, "Result": []}, orders)
    for item in orders["Result"]:
        if item["Status"] == "Filled":
            assert_same_shape(filled_doc, item, extra=_LIFE, drift={"ExecInst"})
        else:  # every other status has the DoneForDay item's keys (its reason only when it has one)
            assert_same_shape(done_doc, item, extra=_LIFE, optional=_LIFE, drift={"ExecInst"})
    filled = next(o for o in orders["Result"] if o["Status"] == "Filled")
    one = (await _call(etna, headers, "GET", f"v1.0/accounts/6303/orders/{filled['Id']}")).json()
    assert_same_shape(fixture("get_order.response.json"), one, extra=_LIFE, drift={"ExecInst"})


async def test_place_and_preview_answers_match_the_fixtures(etna: Etna, headers: dict[str, str]) -> None:
    request = fixture("post_orders.request.json")  # AAPL limit at 170, a Day order with a ClientId
    placed = await _call(etna, headers, "POST", "v1.0/accounts/6303/orders", {**request, "ExpireDate": None})
    assert placed.status_code == 200 and placed.json()["Status"] == "PendingNew"
    assert_same_shape(fixture("post_orders.response.json"), placed.json())
    preview = await _call(etna, headers, "POST", "v1.0/accounts/6303/preview/orders", {**request, "ClientId": "p-1"})
    assert preview.status_code == 200
    assert_same_shape(fixture("post_preview_orders.response.json"), preview.json())
    assert preview.json()["IsSuccessful"] is True and preview.json()["Cost"] == 17000
    state = await etna.state()
    assert not [o for o in state["orders"] if o.get("client_order_id") == "p-1"]  # a preview places nothing


async def test_preview_and_syncorders_refuse_beyond_the_buying_power(etna: Etna, headers: dict[str, str]) -> None:
    huge = {"Symbol": "AAPL", "Type": "Market", "Side": "Buy", "Quantity": 60_000, "TimeInforce": "Day",
            "ClientId": "huge-1"}  # ≈ 14 million USD on a 250 000 USD margin account
    preview = (await _call(etna, headers, "POST", "v1.0/accounts/6303/preview/syncorders", huge)).json()
    assert (preview["IsSuccessful"], preview["ErrorDescription"], preview["ErrorDescriptionArgs"]) == \
        (False, "DayTradingBuyingPowerExceeded", [])
    synced = await _call(etna, headers, "POST", "v1.0/accounts/6303/syncorders", huge)
    assert synced.status_code == 200
    body = synced.json()  # answered once validated: already Rejected, with ETNA's word for it
    assert (body["Status"], body["Description"]) == ("Rejected", "DayTradingBuyingPowerExceeded")
    small = await _call(etna, headers, "POST", "v1.0/accounts/6303/syncorders",
                        {**huge, "Quantity": 1, "ClientId": "small-1"})
    assert small.json()["Status"] in ("New", "Filled", "PartiallyFilled")  # validated, not PendingNew
    placed = (await _call(etna, headers, "POST", "v1.0/accounts/6303/orders", {**huge, "ClientId": "huge-2"})).json()
    assert placed["Status"] == "PendingNew"  # the asynchronous place answers first, rejects a moment later

    async def read() -> dict[str, Any]:
        return dict((await _call(etna, headers, "GET", f"v1.0/accounts/6303/orders/{placed['Id']}")).json())

    got = await eventually(read, lambda o: o["Status"] == "Rejected")
    assert (got["Status"], got.get("Description")) == ("Rejected", "DayTradingBuyingPowerExceeded")


async def test_account_info_answers_the_balance(etna: Etna, headers: dict[str, str]) -> None:
    async def both() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        # an earlier test's order may fill between two reads: take the answer framed by two equal states
        before = await etna.state()
        info = (await _call(etna, headers, "GET", "v1.0/accounts/6303/info")).json()
        return before, info, await etna.state()

    before, info, state = await eventually(both, lambda b: b[0]["accounts"]["6303"] == b[2]["accounts"]["6303"])
    keys = {"cash", "netCash", "excess", "equityTotal", "pendingOrdersCount", "netLiquidity", "stockLongMarketValue",
            "stockBuyingPower", "dayTradingBuyingPower", "maintenanceMargin", "openPL", "marketValue", "totalPL"}
    assert keys <= set(info) and all(isinstance(info[k], int | float) for k in keys)
    assert info["cash"] == float(state["accounts"]["6303"]["cash"])
    assert info["stockBuyingPower"] == pytest.approx(2 * info["excess"])  # a Margin account, as in ETNA's example
    assert (await _call(etna, headers, "GET", "v1.0/accounts/6310/info")).status_code == 401  # another user's


async def test_unknown_routes_answer_etnas_json_envelope(etna: Etna, headers: dict[str, str]) -> None:
    missing = await _call(etna, headers, "GET", "v1.0/accounts/6303/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/json")
    assert missing.json()["Message"].startswith("No HTTP resource was found that matches the request URI")
    wrong = await _call(etna, headers, "PATCH", "v1.0/accounts/6303/orders")
    assert wrong.status_code == 405
    assert wrong.json() == {"Message": "The requested resource does not support http method 'PATCH'."}
