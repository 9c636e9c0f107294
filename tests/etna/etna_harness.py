"""Shared helpers of the ETNA tests: a venue on loopback, a connection to it, the control plane."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from gateway.brokers.etna.adapter import EtnaAdapter
from gateway.config import ConnectionConfig
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner

T = TypeVar("T")


class Etna:
    """A running ETNA venue: ``base_url`` (the wire API), ``root`` (host, for ``/__sandbox__``)."""

    def __init__(self) -> None:
        self.runner = SandboxRunner(["etna"], config=EngineConfig.fast())
        self.base_url = ""
        self.root = ""
        self.http = httpx.AsyncClient(timeout=5.0)

    async def start(self) -> Etna:
        urls = await self.runner.start()
        self.base_url = urls["etna"]
        self.root = self.base_url.removesuffix("api/")
        return self

    async def stop(self) -> None:
        await self.http.aclose()
        await self.runner.stop()

    @property
    def venue(self) -> Any:
        return self.runner.venue("etna")

    def config(self, *, credentials: dict[str, str] | None = None, **options: Any) -> ConnectionConfig:
        return ConnectionConfig(name="etna-test", broker="etna", base_url=self.base_url,
                                credentials=credentials or dict(self.venue.credentials),
                                options={**self.venue.options, **options}, timeout=5.0, read_retries=1,
                                retry_max_wait=0.2)

    def adapter(self, **kw: Any) -> EtnaAdapter:
        return EtnaAdapter(self.config(**kw))

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"{self.root}__sandbox__/{path}", json=body)
        response.raise_for_status()
        return response.json()

    async def state(self) -> dict[str, Any]:
        return dict(await self.control("GET", "state"))

    async def stats(self) -> dict[str, int]:
        return dict((await self.control("GET", "stats"))["requests"])

    async def sandbox_order(self, client_order_id: str) -> dict[str, Any]:
        orders = [o for o in (await self.state())["orders"] if o["client_order_id"] == client_order_id]
        assert len(orders) == 1, orders
        return dict(orders[0])

    async def position(self, account: str, instrument: str) -> str:
        for p in (await self.state())["accounts"][account]["positions"]:
            if p["instrument"] == instrument:
                return str(p["quantity"])
        return "0"


async def eventually(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], within: float = 3.0) -> T:
    """Poll ``probe`` until ``ok`` holds (every 20 ms, at most ``within`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await probe()
        if ok(value) or loop.time() > deadline:
            return value
        await asyncio.sleep(0.02)
