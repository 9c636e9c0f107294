"""Issue #11, honest answers within the deadline: through a fault-injecting proxy (`tests/faultproxy.py`)
in front of the venues, a slow broker's part of the Dashboard ends within its connection's timeout
while the others answer; `Retry-After` is honoured within the deadline and reported beyond it; a
broker that keeps failing opens its circuit and then costs the others nothing; an unexpected error in
one connection stays with that connection; IBKR's order lists under upstream 5xx are either right or
an error, never silently wrong."""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gateway.config import GatewayConfig
from gateway.domain.keys import AccountKey
from gateway.graphql.ids import encode
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner
from tests.conftest import TEST_VENUE
from tests.faultproxy import FaultProxy
from tests.harness import GraphQLClient, RunningGateway, free_port, running_gateway
from tests.placement_drive import connection

SUBS = tuple(f"DU45103{n:02d}" for n in range(30, 50))


@pytest_asyncio.fixture(scope="module")
async def venues() -> AsyncIterator[SandboxRunner]:
    runner = SandboxRunner(["lemon", "etna", "ibkr"], config=EngineConfig.fast(),
                           venue_options={**TEST_VENUE, "ibkr": {"pacing": {"enabled": False}}})
    await runner.start()
    yield runner
    await runner.stop()


def _connection(runner: SandboxRunner, name: str, base_url: str | None = None, **over: Any) -> dict[str, Any]:
    """``placement_drive.connection`` with the timeouts and the breaker these tests measure against."""
    return connection(runner, name, base_url, **{"timeout": 2.0, "connect_timeout": 3.0, "retry_max_wait": 0.2,
                                                 "breaker_threshold": 5, **over})


def _config(**connections: dict[str, Any]) -> GatewayConfig:
    return GatewayConfig.model_validate({"profile": "development", "connections": connections})


def _errors(body: dict[str, Any], connection: str) -> list[dict[str, Any]]:
    return [e for e in body.get("errors") or [] if e["extensions"].get("connection") == connection]


def _accounts(body: dict[str, Any], connection: str) -> list[dict[str, Any]]:
    return next(c["accounts"] for c in body["data"]["connections"] if c["name"] == connection)


async def _timed(client: GraphQLClient, name: str = "Dashboard", variables: dict[str, Any] | None = None
                 ) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    body = await client.run(name, variables, timeout=60)
    return time.monotonic() - started, body


async def test_a_slow_broker_ends_within_its_timeout_while_the_others_answer(venues: SandboxRunner) -> None:
    proxy = FaultProxy(venues.base_urls["etna"], {"timeout": 1.0}, hold=30.0)  # ETNA answers nothing for 30 s
    await proxy.start()
    try:
        async with running_gateway(_config(lemon=_connection(venues, "lemon"),
                                           etna=_connection(venues, "etna", proxy.url))) as gateway:
            took, body = await _timed(gateway.client())
        assert took < 3.0, took  # timeout = 2, read retries included
        etna = _errors(body, "etna")
        assert etna and all(e["extensions"]["code"] == "BROKER_UNAVAILABLE" for e in etna), body.get("errors")
        assert _accounts(body, "lemon") and not _errors(body, "lemon")
    finally:
        await proxy.stop()


async def test_retry_after_is_honoured_within_the_deadline_and_reported_beyond_it(venues: SandboxRunner) -> None:
    proxy = FaultProxy(venues.base_urls["lemon"], {"rate_limited": 1.0}, retry_after=1.0, limit=1)
    await proxy.start()
    try:
        async with running_gateway(_config(lemon=_connection(venues, "lemon", proxy.url))) as gateway:
            took, body = await _timed(gateway.client())
            assert not body.get("errors") and _accounts(body, "lemon")
            assert proxy.counts["rate_limited"] == 1
            assert took >= 1.0  # the 429's read waited what Retry-After said before its second attempt

            proxy.limit, proxy.retry_after = None, 60.0  # now every request: Retry-After beyond the 2 s deadline
            took, body = await _timed(gateway.client())
        assert took < 1.5  # not waited out
        (error,) = _errors(body, "lemon")[:1]
        assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retryAfter"] == 60, error
    finally:
        await proxy.stop()


async def test_with_a_fifth_of_requests_timing_out_each_dashboard_ends_within_timeout_plus_one(
        venues: SandboxRunner) -> None:
    proxies = {name: FaultProxy(venues.base_urls[name], {"timeout": 0.2}, seed=i, hold=30.0)
               for i, name in enumerate(("lemon", "etna"), start=7)}
    for proxy in proxies.values():
        await proxy.start()
    try:
        config = _config(**{name: _connection(venues, name, proxy.url, breaker_threshold=50)
                            for name, proxy in proxies.items()})
        async with running_gateway(config) as gateway:
            results = [await _timed(gateway.client()) for _ in range(5)]
        times = [t for t, _ in results]
        assert max(times) <= 3.0, times
        codes = {e["extensions"]["code"] for _, body in results for e in body.get("errors") or []}
        assert codes <= {"BROKER_UNAVAILABLE"}, codes
        assert sum(p.counts["timeout"] for p in proxies.values()) >= 3  # the faults happened
    finally:
        for proxy in proxies.values():
            await proxy.stop()


async def _upstream(gateway: RunningGateway, connection: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(gateway.url.replace("/graphql", "/metrics"))).text
    match = re.search(rf'gateway_upstream_requests_total\{{connection="{connection}"\}} ([0-9.e+]+)', text)
    return float(match.group(1)) if match else 0.0


async def test_a_closed_port_opens_the_circuit_and_then_costs_the_others_nothing(venues: SandboxRunner) -> None:
    lemon = _connection(venues, "lemon")
    async with running_gateway(_config(lemon=lemon)) as alone:
        await _timed(alone.client())
        baseline = statistics.median([(await _timed(alone.client()))[0] for _ in range(5)])
    closed = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there: connection refused
    etna = _connection(venues, "etna", closed, breaker_threshold=3, breaker_reset=60.0)
    async with running_gateway(_config(lemon=lemon, etna=etna)) as gateway:
        for _ in range(3):  # the failures that open the circuit (each read retried with backoff)
            await _timed(gateway.client())
        async with httpx.AsyncClient() as http:
            ready = (await http.get(gateway.url.replace("/graphql", "/readyz"))).json()
        assert ready["connections"]["etna"]["circuit"] == "open" and not ready["connections"]["etna"]["ready"]
        assert ready["connections"]["lemon"]["ready"]
        sent = await _upstream(gateway, "etna")
        runs = [await _timed(gateway.client()) for _ in range(5)]
        assert await _upstream(gateway, "etna") == sent  # refused at once: nothing reaches the network
        for _, body in runs:
            (error,) = _errors(body, "etna")
            assert error["extensions"]["code"] == "BROKER_UNAVAILABLE" and error["extensions"]["retryAfter"] >= 1
            assert _accounts(body, "lemon")
        with_open_circuit = statistics.median(t for t, _ in runs)
    assert with_open_circuit <= baseline * 1.5 + 0.05, (baseline, with_open_circuit)


async def test_an_unexpected_error_in_one_connection_stays_with_that_connection(venues: SandboxRunner) -> None:
    proxy = FaultProxy(venues.base_urls["etna"], {"wrong_shape": 1.0}, only=("GET",))  # JSON no parser expects
    await proxy.start()
    try:
        async with running_gateway(_config(lemon=_connection(venues, "lemon"),
                                           etna=_connection(venues, "etna", proxy.url))) as gateway:
            client = gateway.client()
            async with httpx.AsyncClient() as http:
                response = await http.post(client.url, json={"query": _DOC})
        body = response.json()
        (error,) = _errors(body, "etna")
        assert error["extensions"]["code"] == "INTERNAL"
        assert error["extensions"]["requestId"] == response.headers["x-request-id"]
        assert "Traceback" not in error["message"] and "x" not in error["message"].split()
        lemon = _accounts(body, "lemon")
        assert lemon and lemon[0]["positions"]["nodes"] and not _errors(body, "lemon")
    finally:
        await proxy.stop()


_DOC = "{ connections { name accounts { accountNumber positions(first: 5) { nodes { quantity } } } } }"


async def test_ibkr_order_lists_under_upstream_5xx_are_right_or_an_error(venues: SandboxRunner) -> None:
    proxy = FaultProxy(venues.base_urls["ibkr"], {"error_5xx": 0.1, "status_5xx": 0.1}, seed=5)
    await proxy.start()
    rng = random.Random(11)
    try:
        config = _config(ibkr=_connection(venues, "ibkr", proxy.url, breaker_threshold=1000))
        async with running_gateway(config) as gateway:
            client = gateway.client()
            right = errors = 0
            for _ in range(40):
                account = rng.choice(SUBS)
                body = await client.run("AccountOrders", {"id": encode(AccountKey("ibkr", account)), "first": 100,
                                                          "maxAge": 0})
                wire = {o["id"] for o in (await _venue_state(venues))["orders"]
                        if o["account"] == account and o["status"] in ("pending_new", "working", "partially_filled")}
                if body.get("errors"):
                    assert {e["extensions"]["code"] for e in body["errors"]} == {"BROKER_UNAVAILABLE"}, body["errors"]
                    errors += 1
                    continue
                nodes = body["data"]["account"]["orders"]["nodes"]
                shown = {n["brokerOrderId"] for n in nodes if n["status"] in ("SUBMITTED", "PENDING_SUBMIT",
                                                                             "PARTIALLY_FILLED")}
                assert all(n["account"]["accountNumber"] == account for n in nodes)
                assert shown == wire, (account, shown, wire)
                right += 1
        assert right >= 20 and proxy.counts["error_5xx"] + proxy.counts["status_5xx"] >= 6, (right, errors)
    finally:
        await proxy.stop()


async def _venue_state(runner: SandboxRunner) -> dict[str, Any]:
    root = runner.base_urls["ibkr"].split("/v1/api/")[0]
    async with httpx.AsyncClient() as http:
        return (await http.get(root + "/__sandbox__/state")).json()


async def test_the_circuit_lets_one_probe_through_and_closes_when_the_broker_is_back(venues: SandboxRunner) -> None:
    from gateway.brokers.breaker import ConnectionBreaker
    from gateway.brokers.http import HttpClient
    from gateway.brokers.pacing import PacingRules
    from gateway.brokers.scheduler import SessionScheduler
    from gateway.config import ConnectionConfig
    from gateway.domain.errors import BrokerNotAvailable, CircuitOpen
    from gateway.sandbox.lemon import API_KEY

    proxy = FaultProxy(venues.base_urls["lemon"], {"status_5xx": 1.0})
    await proxy.start()
    config = ConnectionConfig(name="lemon", broker="lemon", base_url=proxy.url, timeout=2.0, read_retries=0)
    scheduler = SessionScheduler("lemon", PacingRules(), breaker=ConnectionBreaker("lemon", threshold=2, reset=0.5))
    client = HttpClient(config, lambda response: None, scheduler, headers={"Authorization": f"Bearer {API_KEY}"})
    try:
        for _ in range(2):  # two 503s in a row open the circuit
            with pytest.raises(BrokerNotAvailable) as failed:
                await client.read("GET", "account")
            assert not isinstance(failed.value, CircuitOpen)
        assert scheduler.breaker.state == "open"
        with pytest.raises(CircuitOpen):
            await client.read("GET", "account")
        assert proxy.forwarded + proxy.counts["status_5xx"] == 2  # the refused read never reached the network

        proxy.rates, proxy.delay = {"slow": 1.0}, 0.5  # the broker is back, slowly
        await asyncio.sleep(0.6)
        assert scheduler.breaker.state == "half-open"
        results = await asyncio.gather(*(client.read("GET", "account") for _ in range(4)), return_exceptions=True)
        assert sum(1 for r in results if isinstance(r, CircuitOpen)) == 3  # refused while the probe was out
        assert proxy.counts["slow"] == 1  # one probe reached the broker
        assert scheduler.breaker.state == "closed"
        assert (await client.read("GET", "account")).status == 200
    finally:
        await client.close()
        await scheduler.close()
        await proxy.stop()


async def test_an_ibkr_read_retries_outside_the_critical_section_so_a_write_is_not_held_up() -> None:
    """A live-orders read that meets a 503 waits for its retry (backoff, and the next permit of the
    endpoint paced 1 per second here) with the session's critical section free: an order placed
    meanwhile goes at once."""
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast(),
                           venue_options={"ibkr": {"pacing": {"slow_window": 1.0, "global_window": 1.0}}})
    await runner.start()
    proxy = FaultProxy(runner.base_urls["ibkr"], {"status_5xx": 1.0}, limit=1,
                       only=("GET /v1/api/iserver/account/orders",))
    proxy.rates = {}  # armed below, once the session is warm
    await proxy.start()
    try:
        async with running_gateway(_config(ibkr=_connection(runner, "ibkr", proxy.url, timeout=5.0))) as gateway:
            client = gateway.client()
            account = encode(AccountKey("ibkr", SUBS[2]))
            await client.data("AccountOrders", {"id": account, "maxAge": 0})  # pre-flight, first snapshot
            await asyncio.sleep(1.2)
            proxy.rates = {"status_5xx": 1.0}
            reading = asyncio.ensure_future(_timed(client, "AccountOrders", {"id": account, "maxAge": 0}))
            await asyncio.sleep(0.3)  # its first attempt has failed; it waits to retry
            took, placed = await _timed(client, "PlaceOrder", {"input": {
                "accountId": encode(AccountKey("ibkr", SUBS[3])), "instrument": {"brokerInstrumentId": "265598"},
                "side": "BUY", "type": "LIMIT", "quantity": "1", "limitPrice": "226.00"}})
            read_took, read = await reading
        assert proxy.counts["status_5xx"] == 1
        assert placed["data"]["placeOrder"]["__typename"] == "OrderPlaced", placed
        assert not read.get("errors") and read_took >= 0.9  # the read did wait for its retry
        assert took < 0.6, (took, read_took)  # ... and the write did not wait with it
    finally:
        await proxy.stop()
        await runner.stop()
