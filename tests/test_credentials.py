"""Credentials stay with their broker: paging links and redirects are followed to the connection's own
origin only, and no API key, token or password reaches the logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from gateway.brokers.http import same_origin
from gateway.brokers.lemon.client import LemonClient
from gateway.config import ApiKeyConfig, ConnectionConfig
from gateway.domain.errors import BadResponse
from gateway.sandbox.lemon import API_KEY
from tests.conftest import MAIN_KEY, lemon_config_file
from tests.harness import GraphQLClient, free_port, served_process

TOKEN = "lemon-token-that-must-stay-home"


@contextlib.asynccontextmanager
async def _server(routes: list[web.RouteDef]) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP server on a free loopback port: its origin, and the requests it received (path, headers)."""
    seen: list[dict[str, Any]] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append({"path": request.path_qs, "headers": dict(request.headers)})
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def _client(origin: str) -> LemonClient:
    return LemonClient(ConnectionConfig(name="lemon", broker="lemon", base_url=f"{origin}/v1/",
                                        credentials={"api_key": TOKEN}, read_retries=0, rate_limit=1000))


async def test_paging_links_and_redirects_are_followed_to_the_own_origin_only() -> None:
    async def stolen(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "results": [{"isin": "X"}], "next": None})

    async with _server([web.get("/{tail:.*}", stolen)]) as (foreign, foreign_seen):
        own: dict[str, str] = {}

        async def positions(request: web.Request) -> web.Response:
            page = request.query.get("page", "1")
            if page == "1":  # a link to the next page on the broker's own origin: followed
                return web.json_response({"status": "ok", "results": [{"isin": "A"}], "total": 3,
                                          "next": f"{own['origin']}/v1/positions?page=2&limit=100"})
            return web.json_response({"status": "ok", "results": [{"isin": "B"}], "total": 3,
                                      "next": f"{foreign}/v1/positions?page=3&limit=100"})

        async def orders(request: web.Request) -> web.Response:
            raise web.HTTPFound(f"{foreign}/v1/orders")

        async with _server([web.get("/v1/positions", positions), web.get("/v1/orders", orders)]) as (origin, seen):
            own["origin"] = origin
            client = _client(origin)
            try:
                with pytest.raises(BadResponse, match="another origin"):
                    await client.get_all("positions", [])
                with pytest.raises(BadResponse, match="redirect"):
                    await client.get_all("orders", [])
            finally:
                await client.close()
    assert [r["path"].split("?")[0] for r in seen] == ["/v1/positions", "/v1/positions", "/v1/orders"]
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in seen)
    assert foreign_seen == []  # neither the link nor the redirect reached the other origin


def test_same_origin() -> None:
    base = "https://paper-trading.lemon.markets/v1/"
    assert same_origin("https://paper-trading.lemon.markets/v1/orders?page=2", base)
    assert same_origin("https://PAPER-trading.lemon.markets:443/v1/orders", base)
    assert not same_origin("http://paper-trading.lemon.markets/v1/orders", base)
    assert not same_origin("https://paper-trading.lemon.markets.evil.example/v1/", base)
    assert not same_origin("https://paper-trading.lemon.markets:8443/v1/", base)
    assert not same_origin("https://user@paper-trading.lemon.markets/v1/", base)
    assert not same_origin("https://paper-trading.lemon.markets:bad/v1/", base)


async def test_no_secret_reaches_the_logs_of_a_debug_run(tmp_path: Path, lemon_url: str) -> None:
    """A production gateway at DEBUG with the access log: queries, a mutation, bad input, a wrong key,
    an unknown key in a WebSocket init, a broker that is down. No configured secret appears."""
    dead_secret = "dead-broker-password-0xDEADBEEF"
    wrong_key = "wrong-key-that-should-not-be-logged"
    config = tmp_path / "gateway.toml"
    lemon_config_file(config, lemon_url, keys='["lemon", "down"]', more=f"""
[connections.down]
broker = "lemon"
base_url = "http://127.0.0.1:{free_port()}/v1/"
credentials = {{ api_key = "{dead_secret}" }}
timeout = 0.5
read_retries = 0

""")
    async with served_process("--config", str(config), "--access-log",
                              options=("--log-level", "debug")) as (url, lines):
        client = GraphQLClient(url, MAIN_KEY)
        dashboard = await client.run("Dashboard")
        account = next(c for c in dashboard["data"]["connections"] if c["name"] == "lemon")["accounts"][0]["id"]
        await client.run("PlaceOrder", {"input": {"accountId": account, "instrument": {"isin": "IE00B4L5Y983"},
                                                  "side": "BUY", "type": "LIMIT", "quantity": "1",
                                                  "limitPrice": "1.00", "timeInForce": "GTC"}})
        await client.post("mutation { placeOrder(input: {quantity: \"1e999\"}) { __typename } }")
        await client.run("Orders", {"first": 5})
        async with httpx.AsyncClient() as http:
            await http.post(url, json={"query": "{ connections { name } }"},
                            headers={"Authorization": f"Bearer {wrong_key}"})
            await http.get(url, params={"query": "{ connections { name } }"},
                           headers={"Authorization": f"Bearer {MAIN_KEY}"})
        import websockets

        async with websockets.connect(url.replace("http://", "ws://"), subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {wrong_key}"}}))
            with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
                await asyncio.wait_for(ws.recv(), 5)
        await asyncio.sleep(0.5)  # the last lines are written
    text = "".join(lines)
    assert "DEBUG" in text and "POST /graphql" in text, text[-2000:]  # the run did log, at DEBUG, with access lines
    for secret in (MAIN_KEY, API_KEY, dead_secret, wrong_key, ApiKeyConfig.hash_key(MAIN_KEY)):
        assert secret not in text, f"{secret!r} appears in the log"
