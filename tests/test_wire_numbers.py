"""Numbers in brokers' answers are bounded like the gateway's own inputs (gateway/wire_numbers.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from aiohttp import web

from gateway.domain.errors import BadResponse
from gateway.wire_numbers import loads
from tests.test_credentials import _client, _server


def test_ordinary_numbers_parse_and_extreme_ones_are_refused() -> None:
    assert loads('{"a": 70488.00, "b": 1.2345e-5, "c": 12, "d": -0.5}') == {
        "a": Decimal("70488.00"), "b": Decimal("1.2345e-5"), "c": 12, "d": Decimal("-0.5")}
    for text in ("[1e1000000]", "[1.5e-100000]", "[0." + "1" * 100 + "]", "[" * 100_000 + "]" * 100_000,
                 "[1.0e41]", "[1E41]", "[-2.5E-45]", "[0." + "0" * 45 + "1]"):  # short ones with an exponent too
        with pytest.raises(ValueError):
            loads(text)
    # the decoder's short cut (under 20 characters, no exponent) and the numbers just past it
    nineteen, twenty = "1234567890.12345678", "-1234567890.12345678"
    assert loads(f"[{nineteen}, {twenty}, 1.0e40, 0.{'0' * 38}1]") == [
        Decimal(nineteen), Decimal(twenty), Decimal("1.0e40"), Decimal("1e-39")]


@pytest.mark.parametrize("answer", ['{"status": "ok", "results": [{"quantity": 1e1000000}], "next": null}',
                                    '{"status": "ok", "results": ' + "[" * 100_000 + "]" * 100_000 + "}"])
async def test_a_broker_answer_with_an_extreme_number_is_a_bad_response_at_once(answer: str) -> None:
    async def positions(request: web.Request) -> web.Response:
        return web.Response(text=answer, content_type="application/json")

    async with _server([web.get("/v1/positions", positions)]) as (origin, seen):
        client = _client(origin)
        try:
            with pytest.raises(BadResponse, match="non-JSON answer"):
                await client.get_all("positions", [])
        finally:
            await client.close()
    assert len(seen) == 1
