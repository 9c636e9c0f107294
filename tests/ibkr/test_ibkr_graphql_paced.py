"""The Dashboard over the whole FA book (master + 20 sub-accounts) under pacing: the venue enforces
IBKR's pacing with the slow window shortened to 0.2 s (the documented 5 s would make this test take
~100 s), the connection takes the matching limiter settings from the venue's options, and not one
request meets a 429."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from ibkr_support import MASTER, SUBS
from test_ibkr_graphql import gateway_config

from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner
from tests.harness import GraphQLClient, SandboxControl, running_gateway

PACING = {"slow_window": 0.2, "global_window": 0.25, "penalty": 2.0}  # 10 requests per 0.25 s, slow 1 per 0.2 s


@pytest_asyncio.fixture(scope="module")
async def paced() -> AsyncIterator[tuple[GraphQLClient, SandboxControl]]:
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast(), venue_options={"ibkr": {"pacing": PACING}})
    urls = await runner.start()
    try:
        options = runner.venue("ibkr").options
        assert options["slow_interval"] >= PACING["slow_window"] and options["global_rate"] < 10 / 0.25
        async with running_gateway(gateway_config(runner, orders_repoll_delay=0.05)) as gateway:
            yield gateway.client(), SandboxControl(urls["ibkr"])
    finally:
        await runner.stop()


async def test_ibkr_dashboard_over_twenty_sub_accounts_meets_no_429(paced: tuple[GraphQLClient, SandboxControl]) -> None:
    gql, control = paced
    data = await gql.data("Dashboard", {"positionsFirst": 20})  # a cold session: its first snapshot is re-read
    pacing = await control._call("GET", "/ibkr/pacing")
    assert pacing["enabled"] and pacing["violations"] == 0, pacing
    (ibkr,) = data["connections"]
    accounts = {a["accountNumber"]: a for a in ibkr["accounts"]}
    assert set(accounts) == {MASTER, *SUBS} and len(SUBS) >= 20
    assert sum(1 for a in accounts.values() if a["orders"]["totalCount"]) >= 10
    assert accounts[MASTER]["orders"]["totalCount"] >= 1  # the seeded allocation-group order
    stats = await control.stats()
    assert stats["GET /v1/api/iserver/account/orders"] >= len(accounts)  # every account read, paced
    assert sum(stats.values()) > 10 * 4  # more than a burst allowance: the global limiter had to work too
