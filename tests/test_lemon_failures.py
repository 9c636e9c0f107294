"""A broker that fails is reported per connection, within the timeout, and order writes are never
sent twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.lemon.app import LemonSettings
from gateway.sandbox.venue import SandboxRunner
from tests.conftest import MAIN_KEY, gateway_config, lemon_connections
from tests.harness import RunningGateway, SandboxControl, running_gateway

TIMEOUT = 1.0


@pytest.fixture
def venue(own_lemon_venue: SandboxRunner) -> SandboxRunner:
    """A private lemon venue these tests may stop and disturb."""
    return own_lemon_venue


@pytest.fixture
async def flaky(venue: SandboxRunner) -> AsyncIterator[RunningGateway]:
    config = gateway_config(lemon_connections(venue.base_urls["lemon"], timeout=TIMEOUT, read_retries=1,
                                              retry_max_wait=0.1))
    async with running_gateway(config) as gateway:
        yield gateway


def _unavailable(body: dict, connection: str = "lemon") -> list[dict]:
    errors = [e for e in body.get("errors", []) if e["extensions"].get("connection") == connection]
    assert errors, body
    assert all(e["extensions"]["code"] == "BROKER_UNAVAILABLE" for e in errors), errors
    return errors


async def test_stopped_broker_is_reported_per_connection(venue: SandboxRunner, flaky: RunningGateway) -> None:
    client = flaky.client()  # development profile, no key: both lemon connections
    await venue.stop()
    started = time.monotonic()
    body = await client.run("Dashboard")
    assert time.monotonic() - started < 2 * TIMEOUT + 2
    _unavailable(body, "lemon")
    _unavailable(body, "lemon-large")
    statuses = {c["name"]: c["status"] for c in body["data"]["connections"]}
    assert statuses == {"lemon": "DOWN", "lemon-large": "DOWN"}
    assert all(c["accounts"] == [] for c in body["data"]["connections"])


async def test_one_failing_connection_keeps_the_others_answering(venue: SandboxRunner, flaky: RunningGateway) -> None:
    control = SandboxControl(venue.base_urls["lemon"])
    client = flaky.client()
    await client.data("Dashboard")  # both answer
    # the large account's key is a different user: fail only its account reads
    await flaky.registry.get("lemon-large").client.http.close()
    flaky.registry.get("lemon-large").client.http.base_url = "http://127.0.0.1:9/v1/"  # nothing listens there
    body = await client.run("Dashboard")
    _unavailable(body, "lemon-large")
    answered = {c["name"]: c for c in body["data"]["connections"]}
    assert answered["lemon"]["status"] == "UP" and answered["lemon"]["accounts"]
    assert answered["lemon-large"]["accounts"] == []
    assert await control.total() > 0


async def test_http_500_is_broker_unavailable(venue: SandboxRunner, flaky: RunningGateway) -> None:
    control = SandboxControl(venue.base_urls["lemon"])
    await control.fault(status=500, path="/v1/account")
    await control.reset()
    body = await flaky.client().run("Dashboard")
    _unavailable(body)
    stats = await control.stats()
    assert stats["GET /v1/account"] == 2 * 2  # one retry per read, for each of the two connections


async def test_slow_broker_answers_within_the_timeout(venue: SandboxRunner, flaky: RunningGateway) -> None:
    control = SandboxControl(venue.base_urls["lemon"])
    await control.fault(delay=2 * TIMEOUT + 3, path="/v1/account")  # longer than an answer may take, short teardown
    started = time.monotonic()
    body = await flaky.client().run("Dashboard", timeout=20)
    elapsed = time.monotonic() - started
    _unavailable(body)
    assert elapsed < 2 * TIMEOUT + 1.5, elapsed  # two attempts of TIMEOUT each, then the answer: never a hang


async def test_rate_limited_read_is_retried(venue: SandboxRunner, flaky: RunningGateway) -> None:
    """One 429 (the venue's own body, no Retry-After): the read is sent again after a backoff and the
    Dashboard answers whole. (A ``Retry-After`` is waited for: ``tests/test_faults.py``.)"""
    control = SandboxControl(venue.base_urls["lemon"])
    await control.reset()
    await control.fault(status=429, path="/v1/account", times=1)
    body = await flaky.client().run("Dashboard")
    assert not body.get("errors"), body
    assert (await control.stats())["GET /v1/account"] >= 2  # the 429'd read went again


async def test_order_post_that_times_out_after_creation_is_found_by_client_order_id(
        venue: SandboxRunner, flaky: RunningGateway) -> None:
    control = SandboxControl(venue.base_urls["lemon"])
    client = flaky.client()
    account = (await client.data("Dashboard"))["connections"][0]["accounts"][0]["id"]
    before = len((await control.state())["orders"])
    # the venue creates the order, then its answer is delayed past the gateway's timeout
    await control.fault(path="/v1/orders", method="POST", after=True, delay=TIMEOUT + 1, times=1)
    result = (await client.data("PlaceOrder", {"input": {
        "accountId": account, "instrument": {"isin": "US0378331005"}, "side": "BUY", "type": "MARKET",
        "quantity": "1", "idempotencyKey": f"lost-{uuid.uuid4()}"}}))["placeOrder"]
    assert result["__typename"] == "OrderPlaced", result
    orders = (await control.state())["orders"]
    assert len(orders) == before + 1
    assert orders[-1]["client_order_id"] == result["order"]["clientOrderId"]
    stats = await control.stats()
    assert stats["POST /v1/orders"] == 1  # never sent a second time


async def test_order_post_lost_before_creation_is_outcome_unknown(venue: SandboxRunner, flaky: RunningGateway) -> None:
    control = SandboxControl(venue.base_urls["lemon"])
    client = flaky.client()
    account = (await client.data("Dashboard"))["connections"][0]["accounts"][0]["id"]
    before = len((await control.state())["orders"])
    await control.fault(path="/v1/orders", method="POST", delay=TIMEOUT + 1, status=502, times=1)
    result = (await client.data("PlaceOrder", {"input": {
        "accountId": account, "instrument": {"isin": "US0378331005"}, "side": "BUY", "type": "MARKET",
        "quantity": "1"}}))["placeOrder"]
    assert result["__typename"] == "OrderOutcomeUnknown", result
    assert result["code"] == "OUTCOME_UNKNOWN" and result["clientOrderId"].startswith("gw")
    assert len((await control.state())["orders"]) == before
    assert (await control.stats())["POST /v1/orders"] == 1




async def test_client_side_limiter_keeps_a_burst_under_the_venues_limit() -> None:
    """60 distinct reads at once (60 windows of one account's positions: nothing to share) against a
    venue allowing 40 a second: the gateway's windows (at most 10 in any 0.5 s) spread them out, so
    the venue never answers 429."""
    runner = SandboxRunner(["lemon"], config=EngineConfig.fast(),
                           venue_options={"lemon": {"settings": LemonSettings(rate_limit=40, rate_window=1.0)}})
    await runner.start()
    try:
        config = gateway_config(lemon_connections(runner.base_urls["lemon"], rate_limit=20, rate_burst=10,
                                                  read_retries=0))
        async with running_gateway(config) as gateway:
            client = gateway.client(MAIN_KEY)
            account = (await client.data("Dashboard"))["connections"][0]["accounts"][0]["id"]
            await asyncio.sleep(1.0)  # the Dashboard's reads leave the windows
            started = time.monotonic()
            bodies = await asyncio.gather(*(client.run("AccountPositions", {"id": account, "first": n})
                                            for n in range(1, 61)))
            elapsed = time.monotonic() - started
        assert all(not body.get("errors") for body in bodies), [b["errors"] for b in bodies if b.get("errors")]
        assert elapsed >= 2.0  # (60 - 10) / 20 per second: the limiter did the spreading
    finally:
        await runner.stop()
