"""Documented pacing: the venue answers 429 over 10 requests/s and 1 per 5 s on the slow endpoints;
the adapter's own limiter keeps a burst of the gateway's traffic under it."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest_asyncio
from ibkr_support import BIG, CONNECTION, SUBS, Ctx, start, stop

from gateway.domain.keys import AccountKey
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner


@pytest_asyncio.fixture(scope="module")
async def paced():
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast())
    c = await start(runner, relaxed=False)  # documented pacing on both sides
    yield c
    await stop(c, runner)


async def test_ibkr_limiter_keeps_a_burst_under_documented_pacing(paced: Ctx) -> None:
    a = paced.adapter
    started = time.monotonic()
    await asyncio.gather(
        a.fetch_accounts(), a.fetch_allocation_groups(),
        *(a.fetch_positions(AccountKey(CONNECTION, acct)) for acct in (*SUBS[:6], BIG)),
        a.fetch_orders(AccountKey(CONNECTION, SUBS[0])),  # first snapshot after login is empty: re-read 5 s later
    )
    elapsed = time.monotonic() - started
    pacing = (await paced.control.get("/__sandbox__/ibkr/pacing")).json()
    stats = await paced.stats()
    assert pacing["enabled"] and pacing["violations"] == 0
    assert sum(stats.values()) >= 25  # well over one second's worth of the global limit
    assert stats["GET /v1/api/iserver/account/orders"] == 2
    assert elapsed >= 5.0  # the two orders reads were spaced by the per-endpoint limiter


async def test_ibkr_venue_answers_429_and_penalty_box_to_an_unpaced_burst(paced: Ctx) -> None:
    await asyncio.sleep(1.1)  # let the global window drain
    async with httpx.AsyncClient(base_url=paced.base_url) as raw:
        answers = await asyncio.gather(*(raw.get("iserver/accounts") for _ in range(15)))
        codes = [r.status_code for r in answers]
        assert codes.count(200) == 10 and codes.count(429) == 5
        assert answers[codes.index(429)].json()["error"].startswith("Too many requests")
        assert (await raw.post("tickle")).status_code == 429  # penalty box
        await paced.control.post("/__sandbox__/ibkr/pacing", json={"reset": True})
        assert (await raw.post("tickle")).status_code == 200
        first = await raw.get("portfolio/accounts")
        second = await raw.get("portfolio/accounts")
        assert (first.status_code, second.status_code) == (200, 429)  # 1 request per 5 s
