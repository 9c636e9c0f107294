"""A document sent again is neither parsed nor validated again (the parser and validation caches),
and the depth and alias limits still refuse what they refuse."""

from __future__ import annotations

import uuid

import pytest
import strawberry.schema.schema as strawberry_schema

from tests.conftest import MAIN_KEY, gateway_config, lemon_connections
from tests.harness import running_gateway


async def test_the_same_document_is_validated_once(lemon_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = strawberry_schema.validate

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "validate", counting)
    async with running_gateway(gateway_config(lemon_connections(lemon_url))) as gateway:
        client = gateway.client(MAIN_KEY)
        query = f"query Unique_{uuid.uuid4().hex} {{ connections {{ name }} }}"  # new to the module-level caches
        for _ in range(3):
            body = (await client.post(query)).json()
            assert body["data"]["connections"], body
        assert len(calls) == 1
        too_deep = "query { connections { accounts { connection { accounts { connection { accounts { connection { " \
                   "accounts { connection { accounts { connection { accounts { id } } } } } } } } } } } } }"
        for _ in range(2):
            body = (await client.post(too_deep)).json()
            assert body.get("errors") and "exceeds maximum operation depth" in body["errors"][0]["message"], body


async def test_a_refused_literal_is_refused_every_time(lemon_url: str) -> None:
    """The input limits' walk of a document's literals is kept per document: the same document is
    refused on every request, and another one is judged on its own literals."""
    config = gateway_config(lemon_connections(lemon_url))
    config.limits.max_string_length = 10
    long = '{ orders(filter: {symbol: "ABCDEFGHIJKL"}) { totalCount } }'
    short = '{ orders(filter: {symbol: "ABC"}) { totalCount } }'
    async with running_gateway(config) as gateway:
        client = gateway.client(MAIN_KEY)
        for query, refused in ((long, True), (short, False), (long, True), (short, False)):
            body = (await client.post(query)).json()
            limits = [e["extensions"].get("limit") for e in body.get("errors") or []]
            assert (limits == ["max_string_length"]) is refused, body
            assert (body.get("data") is None) is refused, body
