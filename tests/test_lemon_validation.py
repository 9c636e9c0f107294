"""Bad input: a typed InvalidInput naming the field, and not one upstream call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.domain.keys import AccountKey, OrderKey
from gateway.graphql.ids import encode
from tests.harness import GraphQLClient, SandboxControl
from tests.test_lemon_orders import account_id, order_input


def _far() -> str:
    return (datetime.now(UTC) + timedelta(days=31)).isoformat()


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("isin check digit", {"instrument": {"isin": "US0378331006"}}, "instrument.isin"),
    ("isin format", {"instrument": {"isin": "APPLE"}}, "instrument.isin"),
    ("no instrument id", {"instrument": {}}, "instrument"),
    ("quantity zero", {"quantity": "0"}, "quantity"),
    ("quantity negative", {"quantity": "-5"}, "quantity"),
    ("fractional quantity on lemon", {"quantity": "1.5"}, "quantity"),
    ("limit without limitPrice", {"type": "LIMIT"}, "limitPrice"),
    ("stop without stopPrice", {"type": "STOP"}, "stopPrice"),
    ("stop limit without stopPrice", {"type": "STOP_LIMIT", "limitPrice": "10"}, "stopPrice"),
    ("market with a limit price", {"limitPrice": "10"}, "limitPrice"),
    ("negative limit price", {"type": "LIMIT", "limitPrice": "-1"}, "limitPrice"),
    ("expiry beyond 30 days", {"type": "LIMIT", "limitPrice": "10", "expiresAt": "FAR"}, "expiresAt"),
    ("expiry in the past", {"type": "LIMIT", "limitPrice": "10", "expiresAt": "2020-01-01T00:00:00+00:00"},
     "expiresAt"),
    ("price finer than lemon's 1/10000", {"type": "LIMIT", "limitPrice": "10.00001"}, "limitPrice"),
]


@pytest.mark.parametrize(("case", "change", "field"), CASES, ids=[c[0] for c in CASES])
async def test_bad_order_input_is_invalid_input_without_upstream_call(
        gql: GraphQLClient, lemon_control: SandboxControl, case: str, change: dict[str, Any], field: str) -> None:
    account = await account_id(gql)
    if change.get("expiresAt") == "FAR":
        change = {**change, "expiresAt": _far()}
    await lemon_control.reset()
    body = await gql.run("PlaceOrder", {"input": order_input(account, **change)})
    result = body["data"]["placeOrder"]
    assert result["__typename"] == "InvalidInput", result
    assert result["code"] == "INVALID_INPUT" and result["field"] == field
    assert await lemon_control.total() == 0


async def test_id_of_another_type_is_invalid_input(gql: GraphQLClient, lemon_control: SandboxControl) -> None:
    account = await account_id(gql)
    order_id = encode(OrderKey("lemon", "acc_x", "ord_x"))
    await lemon_control.reset()
    result = (await gql.data("PlaceOrder", {"input": order_input(order_id)}))["placeOrder"]
    assert result["__typename"] == "InvalidInput" and result["field"] == "accountId"
    cancel = (await gql.data("CancelOrder", {"input": {"orderId": account}}))["cancelOrder"]
    assert cancel["__typename"] == "InvalidInput" and cancel["field"] == "orderId"
    assert await lemon_control.total() == 0


async def test_id_of_another_callers_connection_is_not_found(gql: GraphQLClient, lemon_control: SandboxControl) -> None:
    """The main key may use `lemon` only; an id of `lemon-large` is treated as nonexistent."""
    foreign = encode(AccountKey("lemon-large", "acc_pyLRGll42hQbXMCS0dRzHyKQCRKYHpy7zq"))
    await lemon_control.reset()
    result = (await gql.data("PlaceOrder", {"input": order_input(foreign)}))["placeOrder"]
    assert result["__typename"] == "NotFound"
    assert (await gql.data("Node", {"id": foreign}))["node"] is None
    assert await lemon_control.total() == 0


async def test_garbage_ids_and_cursors_are_bad_user_input(gql: GraphQLClient) -> None:
    body = await gql.run("Order", {"id": "not-an-id"})
    assert body["data"]["order"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql.run("Orders", {"after": "bad-cursor"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql.run("Orders", {"first": 101})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_float_money_is_refused(gql: GraphQLClient) -> None:
    account = await account_id(gql)
    body = (await gql.post("mutation($a: ID!) { placeOrder(input: {accountId: $a, instrument: {isin: \"US0378331005\"}, "
                           "side: BUY, type: LIMIT, quantity: \"1\", limitPrice: 10.5}) { __typename } }",
                           {"a": account})).json()
    assert body["errors"] and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
