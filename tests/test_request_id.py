"""Every answer carries ``X-Request-Id``: the caller's when it is a plausible id, else a fresh one."""

from __future__ import annotations

import httpx

from tests.harness import RunningGateway


async def test_request_id_echoes_a_valid_incoming_id(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(gateway.url, json={"query": "{ connections { name } }"},
                                   headers={"X-Request-Id": "trace-42.a:b"})
    assert response.headers["x-request-id"] == "trace-42.a:b"


async def test_request_id_replaces_an_implausible_id_with_a_fresh_one(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient() as http:
        first = await http.get(gateway.url.replace("/graphql", "/healthz"), headers={"X-Request-Id": "bad id\t!"})
        second = await http.get(gateway.url.replace("/graphql", "/healthz"))
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert ids[0] != ids[1]
