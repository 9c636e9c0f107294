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
