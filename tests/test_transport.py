"""CSRF prevention, CORS, unauthenticated WebSockets, the operations endpoints in production and the
bounded drain on SIGTERM, over real HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.lemon import API_KEY
from gateway.sandbox.venue import SandboxRunner
from gateway.transport_config import CorsConfig, TransportConfig
from tests.conftest import LARGE_KEY, MAIN_KEY, TEST_VENUE, gateway_config, lemon_connections
from tests.harness import RunningGateway, SandboxControl, eventually, free_port, running_gateway

AUTH = {"Authorization": f"Bearer {MAIN_KEY}"}
QUERY = json.dumps({"query": "{ connections { name } }"})
SUBSCRIPTION = json.dumps({"query": "subscription { orderStatusChanged { eventId } }"})


async def _first_line(http: httpx.AsyncClient, method: str, url: str, **kw: Any) -> tuple[int, str]:
    """Status and content type of an answer that may be an event stream (which never ends by itself)."""
    async with http.stream(method, url, **kw) as response:
        return response.status_code, response.headers.get("content-type", "")


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
async def test_simple_requests_are_refused_on_both_endpoints_unless_a_csrf_header_is_present(
        gateway: RunningGateway, content_type: str | None) -> None:
    plain = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    async with httpx.AsyncClient(timeout=10) as http:
        for url, body in ((gateway.url, QUERY), (gateway.url + "/stream", SUBSCRIPTION)):
            refused = await http.post(url, content=body, headers=plain)
            assert refused.status_code == 400, (url, refused.text)
            assert refused.json()["errors"][0]["extensions"]["code"] == "CSRF_REFUSED"
    if content_type is None or content_type.startswith("text/plain"):  # the body is JSON: served with the header
        async with httpx.AsyncClient(timeout=10) as http:
            for header in ("x-graphql-csrf", "apollo-require-preflight"):
                served = await http.post(gateway.url, content=QUERY, headers={**plain, header: "true"})
                assert served.status_code == 200 and served.json()["data"]["connections"] == [{"name": "lemon"}]
                status, first = await _first_line(http, "POST", gateway.url + "/stream", content=SUBSCRIPTION,
                                                  headers={**plain, header: "1", "Accept": "text/event-stream"})
                assert status == 200 and first.startswith("text/event-stream"), first


async def test_get_operations_need_a_csrf_header_or_a_json_content_type(gateway: RunningGateway) -> None:
    params = {"query": "{ connections { name } }"}
    sub = {"query": "subscription { orderStatusChanged { eventId } }"}
    async with httpx.AsyncClient(timeout=10) as http:
        refused = await http.get(gateway.url, params=params, headers=AUTH)
        refused_stream = await http.get(gateway.url + "/stream", params=sub, headers=AUTH)
        empty_header = await http.get(gateway.url, params=params, headers={**AUTH, "x-graphql-csrf": ""})
        with_header = await http.get(gateway.url, params=params, headers={**AUTH, "x-apollo-operation-name": "Q"})
        apollo_client = await http.get(gateway.url, params=params, headers={**AUTH, "Content-Type": "application/json"})
        status, first = await _first_line(http, "GET", gateway.url + "/stream", params=sub,
                                          headers={**AUTH, "x-graphql-csrf": "1", "Accept": "text/event-stream"})
    for response in (refused, refused_stream, empty_header):
        assert response.status_code == 400 and response.json()["errors"][0]["extensions"]["code"] == "CSRF_REFUSED"
    for response in (with_header, apollo_client):
        assert response.status_code == 200 and response.json()["data"]["connections"] == [{"name": "lemon"}]
    assert status == 200 and first.startswith("text/event-stream"), first


async def test_csrf_prevention_can_be_turned_off(lemon_url: str) -> None:
    config = gateway_config(lemon_connections(lemon_url))
    config.transport = TransportConfig(csrf_prevention=False)
    async with running_gateway(config) as gateway, httpx.AsyncClient(timeout=10) as http:
        response = await http.get(gateway.url, params={"query": "{ connections { name } }"}, headers=AUTH)
    assert response.status_code == 200


async def test_cors_is_off_by_default_and_allows_only_the_configured_origins(gateway: RunningGateway,
                                                                            lemon_url: str) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    async with httpx.AsyncClient(timeout=10) as http:
        default = await http.options(gateway.url, headers=preflight)
        post = await http.post(gateway.url, content=QUERY, headers={**AUTH, "Content-Type": "application/json",
                                                                    "Origin": "https://app.example"})
    assert default.status_code == 405 and "access-control-allow-origin" not in default.headers
    assert "access-control-allow-origin" not in post.headers

    config = gateway_config(lemon_connections(lemon_url))
    config.cors = CorsConfig(allow_origins=["https://app.example"])
    async with running_gateway(config) as cors, httpx.AsyncClient(timeout=10) as http:
        allowed = await http.options(cors.url, headers=preflight)
        other = await http.options(cors.url, headers={**preflight, "Origin": "https://evil.example"})
        post = await http.post(cors.url, content=QUERY, headers={**AUTH, "Content-Type": "application/json",
                                                                 "Origin": "https://app.example"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-graphql-csrf" in allowed.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    assert post.status_code == 200 and post.headers["access-control-allow-origin"] == "https://app.example"


async def _open(url: str) -> Any:
    return await websockets.connect(url.replace("http", "ws"), subprotocols=["graphql-transport-ws"])


async def _closed(ws: Any, timeout: float = 10.0) -> tuple[int | None, str]:
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return ws.close_code, ws.close_reason or ""


async def test_websockets_without_connection_init_are_capped_per_address(lemon_url: str) -> None:
    config = gateway_config(lemon_connections(lemon_url))
    config.transport = TransportConfig(max_unauthenticated_sockets_per_client=3, connection_init_timeout=30)
    async with running_gateway(config) as gateway:
        idle = [await _open(gateway.url) for _ in range(3)]
        one_more = await _open(gateway.url)
        assert await _closed(one_more) == (1013, "too many WebSocket connections without connection_init from this "
                                                 "address; try again later")
        await idle[0].send(json.dumps({"type": "connection_init", "payload": AUTH}))  # authenticated: frees its place
        assert json.loads(await asyncio.wait_for(idle[0].recv(), 10))["type"] == "connection_ack"
        admitted = await _open(gateway.url)
        await admitted.send(json.dumps({"type": "connection_init", "payload": AUTH}))
        assert json.loads(await asyncio.wait_for(admitted.recv(), 10))["type"] == "connection_ack"
        await idle[1].close()  # a socket that goes away frees its place too (once the server has seen it go)
        again = await eventually(lambda: _admitted(gateway.url))
        for ws in (*idle, admitted, again):
            await ws.close()


async def _admitted(url: str) -> Any:
    """A socket that got its ``connection_ack``, or ``None`` when it was refused for the cap."""
    ws = await _open(url)
    await ws.send(json.dumps({"type": "connection_init", "payload": AUTH}))
    try:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
    except websockets.ConnectionClosed:
        assert ws.close_code == 1013
        return None
    return ws


async def test_a_websocket_without_connection_init_is_closed_after_the_init_timeout(lemon_url: str) -> None:
    assert TransportConfig().connection_init_timeout == 10.0  # the default
    config = gateway_config(lemon_connections(lemon_url))
    config.transport = TransportConfig(connection_init_timeout=0.5)
    async with running_gateway(config) as gateway:
        ws = await _open(gateway.url)
        assert await _closed(ws) == (4408, "Connection initialisation timeout")


async def test_health_and_metrics_in_production_name_no_connection_without_an_ops_key(lemon_url: str) -> None:
    config = gateway_config(lemon_connections(lemon_url), profile="production")
    config.transport = TransportConfig(ops_keys=["large"])
    async with running_gateway(config) as gateway, httpx.AsyncClient(timeout=10) as http:
        root = gateway.url.replace("/graphql", "")

        async def get(path: str, key: str | None) -> httpx.Response:
            return await http.get(root + path, headers={"Authorization": f"Bearer {key}"} if key else {})

        for key in (None, MAIN_KEY, "not-a-key"):  # no key, a tenant's key, a wrong key
            health, ready, metrics = await get("/healthz", key), await get("/readyz", key), await get("/metrics", key)
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            assert ready.status_code == 200 and ready.json()["connections"] == {"total": 2, "ready": 2}
            assert metrics.status_code == 401 and metrics.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert not [r for r in (health, ready, metrics) if "lemon" in r.text], key
        ops_health, ops_ready, ops_metrics = (await get("/healthz", LARGE_KEY), await get("/readyz", LARGE_KEY),
                                              await get("/metrics", LARGE_KEY))
    assert ops_health.json()["connections"] == ["lemon", "lemon-large"]
    assert set(ops_ready.json()["connections"]) == {"lemon", "lemon-large"}
    assert ops_metrics.status_code == 200 and "gateway_" in ops_metrics.text


# -- SIGTERM ----------------------------------------------------------------------------------------

@pytest.fixture
async def slow_venue() -> AsyncIterator[SandboxRunner]:
    runner = SandboxRunner(["lemon"], config=EngineConfig.fast(), venue_options=TEST_VENUE)
    await runner.start()
    yield runner
    for running in runner.running.values():  # do not wait for the delayed answer still being held
        running.server.force_exit = True
    await runner.stop()


async def test_sigterm_drains_within_the_configured_bound_then_stops(slow_venue: SandboxRunner, tmp_path: Path) -> None:
    """An operation held up by a broker that answers after 60 s, and an open subscription: SIGTERM stops
    the process within ``shutdown_timeout`` (2 s here; default 10 s), not when the broker answers."""
    assert TransportConfig().shutdown_timeout == 10.0  # the default
    url = slow_venue.base_urls["lemon"]
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
profile = "development"
[limits]
operation_timeout = 120
[transport]
shutdown_timeout = 2
[connections.lemon]
broker = "lemon"
base_url = "{url}"
credentials = {{ api_key = "{API_KEY}" }}
timeout = 90
read_retries = 0
rate_limit = 10000
""")
    control = SandboxControl(url)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                                                "--port", str(port), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            while "GraphiQL:" not in (line := (await proc.stdout.readline()).decode()):
                assert line, "serve exited early"
        gateway = f"http://127.0.0.1:{port}/graphql"
        async with httpx.AsyncClient(timeout=120) as http, http.stream(
                "POST", gateway + "/stream", content=SUBSCRIPTION,
                headers={"Content-Type": "application/json", "Accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            await control.reset()
            await control.fault(delay=60, path="/v1/account")
            held = asyncio.create_task(http.post(gateway, json={"query": "{ accounts { id } }"}))
            await eventually(lambda: _arrived(control, "/v1/account"))
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                await proc.wait()
            elapsed = time.monotonic() - started
            held.cancel()
        assert proc.returncode == 0
        assert elapsed < 2 + 5, elapsed  # the 2 s drain, then the lifespan's own shutdown (not the broker's 60 s)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await control.clear_faults()


async def _arrived(control: SandboxControl, path: str) -> bool:
    return any(r["path"] == path for r in await control.log())
