"""The ETNA venue's wire format over HTTP: headers and error bodies, paging envelopes, filters,
the order life cycle words, 204 / 409 / 422."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from etna_harness import Etna, eventually


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
    assert r.status_code == 200 and r.json()["State"] == "Succeeded"
    return {"Et-App-Key": creds["app_key"], "Authorization": f"Bearer {r.json()['Token']}"}


async def _get(etna: Etna, headers: dict[str, str], path: str, **params: Any) -> httpx.Response:
    return await etna.http.get(etna.base_url + path, headers=headers, params=params)


async def test_missing_app_key_403_and_bad_token_401_bodies(etna: Etna, headers: dict[str, str]) -> None:
    r = await _get(etna, {}, "v1.0/users/@me/accounts")
    assert r.status_code == 403 and r.json() == {"error": "Application key is not defined or does not exist"}
    r = await _get(etna, {**headers, "Authorization": "Bearer nope"}, "v1.0/users/@me/accounts")
    assert r.status_code == 401 and r.json() == {"Message": "Authorization has been denied for this request."}
    r = await _get(etna, headers, "v1.0/accounts/6310/positions")  # another user's account
    assert r.status_code == 401


async def test_two_factor_second_step_without_first_token_is_corrupted_ticket(etna: Etna) -> None:
    r = await etna.http.post(etna.base_url + "token", headers={
        "Et-App-Key": etna.venue.credentials["app_key"], "VerificationCode": "424242"})
    assert r.status_code == 401
    assert r.json() == {"State": "Failed", "Step": "VerificationCode", "Reason": "Corrupted ticket"}


async def test_orders_paging_envelope_and_links(etna: Etna, headers: dict[str, str]) -> None:
    r = await _get(etna, headers, "v1.0/accounts/6303/orders", pageNumber=1, pageSize=5, sortField="Id", desc="true")
    body = r.json()
    assert set(body) == {"Result", "NextPageLink", "PreviousPageLink", "TotalCount"} and len(body["Result"]) == 5
    assert body["NextPageLink"].endswith("/api/v1.0/accounts/6303/orders?pageNumber=2&pageSize=5")
    assert body["PreviousPageLink"].endswith("pageNumber=0&pageSize=5")
    ids = [o["Id"] for o in body["Result"]]
    assert ids == sorted(ids, reverse=True)
    last = await _get(etna, headers, "v1.0/accounts/6303/orders", pageNumber=4, pageSize=5)
    assert last.json()["NextPageLink"] == ""
    assert (await _get(etna, headers, "v1.0/accounts/6303/orders", pageSize=101)).status_code == 400
    assert (await _get(etna, headers, "v1.0/accounts/6303/positions", pageSize=100)).status_code == 400


@pytest.mark.parametrize("expression,valid", [
    ("CreateDate between #2019-03-13T18:31:42# and #2099-03-17T18:31:42#", True),
    ("ModifyDate < #2099-01-01#", True),
    ("Quantity between 10 and 100 and Symbol = 'AAPL'", True),
    ("SecurityId = 1001", True),
    ("Status in (0, 2, 4)", True),
    ("Symbol = 'AAPL' or Symbol = 'MSFT'", False),
    ("Symbol > 'A'", False),
    ("Quantity = 'AAPL'", False),
    ("CreateDate >= 2019-01-01", False),
    ("Side = 'Buy'", False),
    ("Symbol = 'AAPL", False),
])
async def test_filter_language_valid_or_400(etna: Etna, headers: dict[str, str], expression: str, valid: bool) -> None:
    r = await _get(etna, headers, "v1.0/accounts/6303/orders", pageSize=100, filter=expression)
    assert r.status_code == (200 if valid else 400), r.text


async def test_filter_status_and_quantity_select_exactly(etna: Etna, headers: dict[str, str]) -> None:
    everything = (await _get(etna, headers, "v1.0/accounts/6303/orders", pageSize=100)).json()["Result"]
    r = await _get(etna, headers, "v1.0/accounts/6303/orders", pageSize=100,
                   filter="Status in (2) and Quantity between 10 and 100")
    want = [o["Id"] for o in everything if o["Status"] == "Filled" and 10 <= o["Quantity"] <= 100]
    assert [o["Id"] for o in r.json()["Result"]] == want and want


async def test_place_replace_cancel_wire_words(etna: Etna, headers: dict[str, str]) -> None:
    url = etna.base_url + "v1.0/accounts/6304/orders"
    r = await etna.http.post(url, headers=headers, json={
        "Symbol": "NVDA", "Type": "Limit", "Side": "Buy", "Quantity": 2, "Price": 50, "TimeInforce": "GoodTillCancel",
        "ClientId": "wire-1", "ExecInst": "AllOrNone"})
    placed = r.json()
    assert r.status_code == 200 and placed["Status"] == "PendingNew" and placed["LeavesQuantity"] == 0
    assert placed["TimeInForce"] == "GoodTillCancel" and placed["ExecInst"] == "AllOrNone"
    one = etna.base_url + f"v1.0/accounts/6304/orders/{placed['Id']}"
    new = await eventually(lambda: etna.http.get(one, headers=headers), lambda r: r.json()["Status"] == "New")
    assert new.json()["LeavesQuantity"] == 2
    put = await etna.http.put(one, headers=headers, json={"Id": placed["Id"], "Quantity": 3, "Price": 51.5})
    assert put.status_code == 200 and put.json()["Status"] == "PendingReplace" and put.json()["Target"] == "Modify"
    deleted = await etna.http.delete(one, headers=headers)
    assert deleted.status_code == 204 and deleted.content == b""
    gone = await eventually(lambda: etna.http.get(one, headers=headers), lambda r: r.json()["Status"] == "Canceled")
    assert gone.json()["Status"] == "Canceled"
    again = await etna.http.delete(one, headers=headers)
    assert again.status_code == 409 and "cannot be cancelled" in again.json()["Message"]


async def test_validation_422_model_state(etna: Etna, headers: dict[str, str]) -> None:
    r = await etna.http.post(etna.base_url + "v1.0/accounts/6303/orders", headers=headers,
                             json={"Type": "Limit", "Side": "Buy", "Quantity": 1})
    assert r.status_code == 422
    body = r.json()
    assert body["Message"] == "Validation error occured while processing entity"
    assert body["ModelState"]["resource.Symbol"] == ["Symbol is required"] and "resource.Price" in body["ModelState"]


async def test_unknown_account_is_500_as_on_etna(etna: Etna, headers: dict[str, str]) -> None:
    r = await _get(etna, headers, "v1.0/accounts/7125/orders")
    assert r.status_code == 500 and r.json()["error"] == "Unexpected server error"


async def test_equity_by_id_and_security_types(etna: Etna, headers: dict[str, str]) -> None:
    aapl = (await _get(etna, headers, "v1.0/equities/1001")).json()
    spy = (await _get(etna, headers, "v1.0/equities/1002")).json()
    assert (aapl["Symbol"], aapl["Type"], aapl["Exchange"]) == ("AAPL", "CommonStock", "XNAS")
    assert spy["Type"] == "ETF"
    assert (await _get(etna, headers, "v1.0/equities/AAPL")).status_code == 401  # by ticker: administrators only
