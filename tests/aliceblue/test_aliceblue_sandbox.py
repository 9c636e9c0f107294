"""The Alice Blue venue speaks the wire format of shared/brokers/aliceblue.md, quirks included."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import AliceEnv

ORDER = {"exchange": "NSE", "instrumentId": "22", "transactionType": "BUY", "quantity": 30, "product": "LONGTERM",
         "orderComplexity": "REGULAR", "orderType": "LIMIT", "validity": "DAY", "price": "1120.10",
         "slTriggerPrice": "", "disclosedQuantity": "", "deviceId": "123", "orderTag": "gw-1"}


async def _session(env: AliceEnv) -> dict[str, str]:
    c = env.credentials
    checksum = hashlib.sha256((c["user_id"] + c["auth_code"] + c["api_secret"]).encode()).hexdigest()
    body = (await env.http.post(env.base_url + "vendor/getUserDetails", json={"checkSum": checksum})).json()
    assert body["stat"] == "Ok" and body["clientId"] == "912444"
    return {"Authorization": f"Bearer {body['userSession']}"}


async def _call(env: AliceEnv, method: str, path: str, auth: dict[str, str], body: Any = None) -> Any:
    response = await env.http.request(method, env.base_url + path, json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def test_login_failure_uses_stat_and_emsg(env: AliceEnv) -> None:
    response = await env.http.post(env.base_url + "vendor/getUserDetails", json={"checkSum": "0" * 64})
    assert response.status_code == 200
    assert response.json() == {"stat": "Not_ok", "emsg": "Invalid auth code"}


async def test_calls_without_a_valid_session_answer_401_ec087(env: AliceEnv) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = await env.http.get(env.base_url + "orders/book", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"status": "Not_Ok", "message": "EC087"}


async def test_empty_books_answer_their_ec_codes(env: AliceEnv) -> None:
    auth = await _session(env)
    assert await _call(env, "GET", "orders/book", auth) == {"status": "Not_Ok", "message": "EC916"}
    assert await _call(env, "GET", "orders/trades", auth) == {"status": "Not_Ok", "message": "EC926"}
    assert await _call(env, "GET", "holdings/MIS", auth) == {"status": "Not_Ok", "message": "EC922"}


async def test_placeorder_basket_answers_per_item_and_prices_come_back_as_numbers(env: AliceEnv) -> None:
    auth = await _session(env)
    body = await _call(env, "POST", "orders/placeorder", auth, [ORDER, {**ORDER, "quantity": -1},
                                                                {**ORDER, "instrumentId": "99999999"}])
    assert body["status"] == "Ok" and body["message"] == "Success"
    ok, bad_qty, bad_id = body["result"]
    assert re.fullmatch(r"\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}", ok["requestTime"])
    assert re.fullmatch(r"\d{15}", ok["brokerOrderId"])
    assert bad_qty == {"status": "Not_Ok", "brokerOrderId": "", "message": "EC904"}
    assert bad_id["message"] == "EC947"
    [item] = (await _call(env, "GET", "orders/book", auth))["result"]
    assert item["price"] == 1120.1 and isinstance(item["price"], float)
    assert item["orderStatus"] == "OPEN" and item["orderTag"] == "gw-1" and item["pendingQuantity"] == 30
    assert item["tradingSymbol"] == "ACC-EQ" and item["product"] == "LONGTERM"


async def test_tick_size_rejection_is_booked_with_the_reason_and_no_times(env: AliceEnv) -> None:
    auth = await _session(env)
    body = await _call(env, "POST", "orders/placeorder", auth, [{**ORDER, "price": "1120.15", "orderTag": ""}])
    order_id = body["result"][0]["brokerOrderId"]
    [row, *older] = (await _call(env, "POST", "orders/history", auth, {"brokerOrderId": order_id}))["result"]
    assert row["orderStatus"] == "REJECTED"
    assert row["rejectionReason"] == "ORA:Price 1120.15 is not a multiple of tick size 0.10 "
    assert row["exchangeOrderId"] == "" and row["orderTime"] == "" and row["exchangeTimestamp"] == ""
    assert await _call(env, "POST", "orders/history", auth, {"brokerOrderId": "1"}) == \
        {"status": "Not_Ok", "message": "EC998"}


async def test_trades_mark_an_empty_tag_with_dashes(env: AliceEnv) -> None:
    auth = await _session(env)
    market = {**ORDER, "instrumentId": "14366", "quantity": 1, "orderType": "MARKET", "price": "", "orderTag": ""}
    await _call(env, "POST", "orders/placeorder", auth, [market])

    async def traded() -> Any:
        body = await _call(env, "GET", "orders/trades", auth)
        return body.get("result")

    [trade] = await env.until(traded)
    assert trade["orderTag"] == "--" and trade["tradedPrice"] == 7.85 and trade["filledQuantity"] == 1


async def test_positions_and_holdings_use_their_own_product_words(env: AliceEnv) -> None:
    auth = await _session(env)
    positions = (await _call(env, "GET", "positions", auth))["result"]
    assert {p["product"] for p in positions} == {"INTRADAY", "MTF"}  # seed 002's words (the fixture: MIS)
    holdings = (await _call(env, "GET", "holdings/CNC", auth))["result"]
    idea = next(h for h in holdings if h["isin"] == "INE669E01016")
    assert idea["product"] == "LONGTERM" and idea["nseInstrumentId"] == "14366" and idea["bseInstrumentId"] == "532822"
    assert idea["dpQuantity"] == 36 and idea["nseTradingSymbol"] == "IDEA-EQ"


async def test_sqroff_takes_old_style_keys_and_answers_its_own_time_format(env: AliceEnv) -> None:
    auth = await _session(env)
    item = {"exchange": "NSE", "symbol": "SBIN-EQ", "quantity": "50", "price": "0", "product": "INTRADAY",
            "transactionType": "BUY", "orderType": "MKT", "ret": "DAY", "instrumentId": "3045",
            "deviceNumber": "x"}
    [result] = (await _call(env, "POST", "orders/positions/sqroff", auth, [item]))["result"]
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2} \d{2}-\d{2}-\d{4}", result["requestTime"])
    too_much = {**item, "quantity": "51", "transactionType": "BUY"}
    [refused] = (await _call(env, "POST", "orders/positions/sqroff", auth, [too_much]))["result"]
    assert refused["message"] == "EC868"


async def test_conversion_takes_either_product_vocabulary_and_checks_the_day_quantity(env: AliceEnv) -> None:
    auth = await _session(env)
    body = {"exchange": "NSE", "validity": "DAY", "prevProduct": "MIS", "product": "CNC", "quantity": "1",
            "tradingSymbol": "ETERNAL-EQ", "transactionType": "BUY", "orderSource": "API"}
    assert (await _call(env, "POST", "conversion", auth, body))["status"] == "Ok"  # the reference's words
    assert await _call(env, "POST", "conversion", auth, {**body, "prevProduct": "NRML"}) == \
        {"status": "Not_Ok", "message": "EC852"}
    assert (await _call(env, "POST", "conversion", auth, {**body, "quantity": "100"}))["message"] == "EC869"
    assert await env.position_qty("912444", "ETERNAL", "LONGTERM") == "151"


async def test_limits_and_profile_need_their_trailing_slash(env: AliceEnv) -> None:
    auth = await _session(env)
    assert (await env.http.get(env.base_url + "limits", headers=auth)).status_code == 404
    [limits] = (await _call(env, "GET", "limits/", auth))["result"]
    assert limits["openingCashLimit"] == 500000
    [profile] = (await _call(env, "GET", "profile/", auth))["result"]
    assert profile["clientId"] == "912444" and "MTF" in profile["products"]


async def test_contract_master_lists_nse_and_bse_ids(env: AliceEnv) -> None:
    url = env.origin + env.options["contract_master_url"]
    nse = (await env.http.get(url, params={"exch": "NSE"})).json()["NSE"]
    bse = (await env.http.get(url, params={"exch": "BSE"})).json()["BSE"]
    acc = next(r for r in nse if r["symbol"] == "ACC")
    assert acc["token"] == "22" and acc["trading_symbol"] == "ACC-EQ" and acc["tick_size"] == "0.10"
    assert next(r for r in bse if r["symbol"] == "IDEA")["token"] == "532822"
    assert {r["isin"] for r in nse} >= {"INE758T01015", "INE669E01016", "INE012A01025", "INE002A01018",
                                        "INE009A01021"}


async def test_injected_server_error_uses_the_failure_envelope(env: AliceEnv) -> None:
    auth = await _session(env)
    await env.http.post(f"{env.origin}/__sandbox__/faults", json={"status": 503, "path": "/open-api/od/v1/positions",
                                                                  "times": 1})
    response = await env.http.get(env.base_url + "positions", headers=auth)
    assert response.status_code == 503 and response.json() == {"status": "Not_Ok", "message": "EC003"}


async def test_sqroff_takes_the_current_format_limit_price_validity_numeric_quantity(env: AliceEnv) -> None:
    """Seed 002's square-off item: ``orderType: "LIMIT"`` with ``price``, ``validity`` and a numeric
    ``quantity`` (the older ``MKT`` / ``ret`` item keeps working, see the test above)."""
    auth = await _session(env)
    item = {"exchange": "NSE", "instrumentId": "5097", "tradingSymbol": "ETERNAL-EQ", "quantity": 2,
            "price": "400.00", "product": "LONGTERM", "transactionType": "SELL", "orderType": "LIMIT",
            "validity": "DAY", "orderComplexity": "REGULAR", "source": "API"}
    [result] = (await _call(env, "POST", "orders/positions/sqroff", auth, [item]))["result"]
    assert result["brokerOrderId"] and "status" not in result
    book = (await _call(env, "GET", "orders/book", auth))["result"]
    order = next(o for o in book if o["brokerOrderId"] == result["brokerOrderId"])
    assert (order["orderType"], order["price"], order["quantity"], order["validity"], order["product"]) == \
        ("LIMIT", 400.0, 2, "DAY", "LONGTERM")
    assert order["orderStatus"] == "OPEN"  # a sell limit far over the market rests
    [market] = (await _call(env, "POST", "orders/positions/sqroff", auth,
                            [{**item, "orderType": "MARKET", "price": ""}]))["result"]
    assert market["brokerOrderId"] and "status" not in market
    [no_price] = (await _call(env, "POST", "orders/positions/sqroff", auth, [{**item, "price": ""}]))["result"]
    assert no_price == {"status": "Not_Ok", "brokerOrderId": "", "message": "EC950"}
    [stop] = (await _call(env, "POST", "orders/positions/sqroff", auth, [{**item, "orderType": "SL"}]))["result"]
    assert stop["message"] == "EC930"
