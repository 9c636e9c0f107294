"""Fixtures: a fresh Alice Blue venue per test on loopback, and an adapter connected to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio

from gateway.brokers import build_adapter
from gateway.brokers.aliceblue.adapter import AliceBlueAdapter
from gateway.config import ConnectionConfig
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner


@dataclass
class AliceEnv:
    base_url: str
    origin: str
    credentials: dict[str, str]
    options: dict[str, Any]
    http: httpx.AsyncClient

    def config(self, name: str = "ab", credentials: dict[str, str] | None = None) -> ConnectionConfig:
        return ConnectionConfig(name=name, broker="aliceblue", base_url=self.base_url,
                                credentials=credentials or self.credentials, options=self.options, timeout=3.0,
                                read_retries=1, retry_max_wait=0.1)

    async def state(self) -> dict[str, Any]:
        return (await self.http.get(f"{self.origin}/__sandbox__/state")).json()

    async def stats(self) -> dict[str, int]:
        return (await self.http.get(f"{self.origin}/__sandbox__/stats")).json()["requests"]

    async def position_qty(self, account: str, instrument: str, product: str) -> str | None:
        for p in (await self.state())["accounts"][account]["positions"]:
            if p["instrument"] == instrument and p["product"] == product:
                return str(p["quantity"])
        return None

    async def until(self, check: Callable[[], Any], within: float = 5.0) -> Any:
        """Poll the async ``check`` until it returns something truthy, for at most ``within`` seconds."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            result = await check()
            if result:
                return result
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not met before the deadline")
            await asyncio.sleep(0.02)


@pytest_asyncio.fixture
async def env() -> AsyncIterator[AliceEnv]:
    runner = SandboxRunner(["aliceblue"], config=EngineConfig.fast())
    urls = await runner.start()
    venue = runner.venue("aliceblue")
    base = urls["aliceblue"]
    origin = base.split("/open-api/", 1)[0]
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield AliceEnv(base, origin, venue.credentials, venue.options, http)
    await runner.stop()


@pytest_asyncio.fixture
async def adapter(env: AliceEnv) -> AsyncIterator[AliceBlueAdapter]:
    built = build_adapter(env.config())
    assert isinstance(built, AliceBlueAdapter)
    await built.start()
    yield built
    await built.close()
