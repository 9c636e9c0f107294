"""Issue #10, fair and cancellable: one API key saturating a connection does not hold up another key's
query; a client that goes away mid-query costs the brokers nothing more; an operation never has more
than its share of requests out at once."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from gateway.config import ApiKeyConfig, GatewayConfig
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.lemon import API_KEY
from gateway.sandbox.venue import SandboxRunner
from tests.conftest import TEST_VENUE
from tests.faultproxy import FaultProxy
from tests.harness import SandboxControl, document, running_gateway
from tests.harness import first_account as _account

KEY_A, KEY_B = "fair-key-a", "fair-key-b"


@pytest_asyncio.fixture(scope="module")
async def lemon() -> AsyncIterator[SandboxRunner]:
    runner = SandboxRunner(["lemon"], config=EngineConfig.fast(), venue_options=TEST_VENUE)
    await runner.start()
    yield runner
    await runner.stop()


def _config(base_url: str, **lemon: Any) -> GatewayConfig:
    return GatewayConfig.model_validate({
        "profile": "development",
        "connections": {"lemon": {"broker": "lemon", "base_url": base_url, "credentials": {"api_key": API_KEY},
                                  "timeout": 5.0, **lemon}},
        "limits": lemon.pop("limits", {}) if "limits" in lemon else {},
        "api_keys": [{"name": "a", "sha256": ApiKeyConfig.hash_key(KEY_A), "connections": ["lemon"]},
                     {"name": "b", "sha256": ApiKeyConfig.hash_key(KEY_B), "connections": ["lemon"]}],
    })



async def test_a_key_saturating_a_connection_does_not_hold_up_another_keys_query(lemon: SandboxRunner) -> None:
    # the connection allows 20 requests a second: key B's 60 different reads need three seconds of them
    config = _config(lemon.base_urls["lemon"], rate_limit=20, rate_burst=10)
    async with running_gateway(config) as gateway:
        a, b = gateway.client(KEY_A), gateway.client(KEY_B)
        account = await _account(a)
        await asyncio.sleep(1.0)  # the windows are empty again
        started = time.monotonic()
        finished: list[float] = []  # when each of B's reads was answered

        async def b_read(n: int) -> dict[str, Any]:
            answer = await b.run("AccountPositions", {"id": account, "first": n}, timeout=60)
            finished.append(time.monotonic())
            return answer

        flood = asyncio.gather(*(b_read(n) for n in range(1, 61)))
        await asyncio.sleep(0.5)  # B's reads fill the queue
        queued_before_a = 60 - len(finished)
        mine = await a.run("AccountPositions", {"id": account, "first": 77}, timeout=60)
        answered = time.monotonic()
        theirs = await flood
        took = time.monotonic() - started
    assert not mine.get("errors") and mine["data"]["account"]["positions"]["totalCount"] >= 1
    assert all(not t.get("errors") for t in theirs)
    assert took >= 2.5  # B's flood was paced
    # A took turns with B instead of queueing behind all of it: most of B's queued reads were answered after A's
    # (measured as an order, not a time, so that a loaded machine does not decide it)
    ahead = sum(1 for t in finished if t <= answered) - (60 - queued_before_a)
    assert queued_before_a >= 30 and ahead < queued_before_a / 2, (ahead, queued_before_a, took)


async def _queued(gateway_url: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(gateway_url.replace("/graphql", "/metrics"))).text
    match = re.search(r'gateway_session_queue_length\{connection="ibkr"\} ([0-9.e+]+)', text)
    return float(match.group(1)) if match else 0.0


async def test_a_client_that_goes_away_mid_query_costs_the_broker_nothing_more() -> None:
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast(),
                           venue_options={"ibkr": {"pacing": {"slow_window": 0.4}}})  # 21 order reads ≈ 9 s
    urls = await runner.start()
    control = SandboxControl(urls["ibkr"])
    venue = runner.venue("ibkr")
    options = {**venue.options, "orders_repoll_delay": 0.05}
    config = GatewayConfig.model_validate({"profile": "development", "connections": {"ibkr": {
        "broker": "ibkr", "base_url": urls["ibkr"], "options": options, "timeout": 5.0}}})
    try:
        async with running_gateway(config) as gateway:
            async with httpx.AsyncClient(timeout=3.0) as http:
                try:
                    await http.post(gateway.url, json={"query": document("Dashboard")})
                except httpx.TimeoutException:
                    pass  # the client gives up and closes its connection
            await asyncio.sleep(0.5)  # what was on the wire when it left comes back
            reads = (await control.stats()).get("GET /v1/api/iserver/account/orders", 0)
            sent = await control.total()
            await asyncio.sleep(2.0)
            assert await control.total() == sent, "the venue got requests for a client that had gone"
            assert sent >= 10 and reads < 15  # the Dashboard was cut off midway, not finished
            assert await _queued(gateway.url) == 0  # nothing left waiting in the session's queue
    finally:
        await runner.stop()


async def test_an_operation_has_at_most_its_share_of_requests_out_at_once(lemon: SandboxRunner) -> None:
    proxy = FaultProxy(lemon.base_urls["lemon"], {"slow": 1.0}, delay=0.2)
    await proxy.start()
    try:
        config = _config(proxy.url, rate_limit=10_000)
        config.limits.max_upstream_per_operation = 3
        async with running_gateway(config) as gateway:
            client = gateway.client(KEY_A)
            account = await _account(client)
            proxy.most_at_once = 0
            aliases = " ".join(f"w{n}: positions(first: {n}) {{ totalCount }}" for n in range(1, 11))
            body = (await client.post(f'query($id: ID!) {{ account(id: $id) {{ {aliases} }} }}', {"id": account},
                                      timeout=60)).json()
        assert not body.get("errors"), body["errors"]
        assert proxy.most_at_once == 3  # ten different windows, three at a time
    finally:
        await proxy.stop()
