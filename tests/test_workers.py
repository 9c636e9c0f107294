"""``broker-gateway serve --workers N`` over the Redis bus: N processes on one port; a subscriber on
any worker receives the events of an order placed through any other, and an account has one watcher
across all of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from gateway.cli import main
from tests.conftest import lemon_config_file
from tests.harness import GraphQLClient, Subscription, eventually, served_process


def _config(folder: Path, lemon_url: str, redis_url: str | None) -> str:
    events = f'backend = "redis"\nredis_url = "{redis_url}"\nstream_key = "workers-test"' if redis_url else ""
    return str(lemon_config_file(folder / "workers.toml", lemon_url, head='profile = "development"', keys=None, more=f"""
[events]
fast_interval = 0.2
slow_interval = 0.5
lease_ttl = 2.0
{events}
"""))


def test_workers_without_redis_are_refused(tmp_path: Path, lemon_url: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--config", _config(tmp_path, lemon_url, None), "--workers", "2",
                                       "--port", "0"])
    assert result.exit_code != 0 and 'backend = "redis"' in result.output


@pytest.mark.timeout(60)
async def test_two_workers_deliver_events_across_processes(tmp_path: Path, lemon_url: str, redis_url: str) -> None:
    async with served_process("--config", _config(tmp_path, lemon_url, redis_url), "--workers", "2") as (url, _):
        client = GraphQLClient(url)

        async def ready() -> bool:
            try:
                return bool((await client.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1}))["connections"])
            except (httpx.HTTPError, AssertionError):
                return False

        await eventually(ready, timeout=30)
        pids = set()
        for _ in range(40):
            async with httpx.AsyncClient() as fresh:
                pids.add((await fresh.get(url.replace("/graphql", "/healthz"))).json()["pid"])
        assert len(pids) == 2  # both workers answer
        account = (await client.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1})
                   )["connections"][0]["accounts"][0]["id"]
        subs = [Subscription(url, "OrderStatusChanged", {"accountId": account}, None) for _ in range(8)]
        await asyncio.gather(*(s.__aenter__() for s in subs))
        try:
            await asyncio.sleep(1.0)  # the watcher's baseline
            placed = (await client.data("PlaceOrder", {"input": {
                "accountId": account, "instrument": {"isin": "DE0008232125"}, "side": "BUY", "type": "MARKET",
                "quantity": "1"}}))["placeOrder"]["order"]
            for sub in subs:  # on whichever worker each landed
                await sub.until(lambda e: e["order"]["id"] == placed["id"] and e["status"] == "FILLED")
        finally:
            await asyncio.gather(*(s.__aexit__(None, None, None) for s in subs))
