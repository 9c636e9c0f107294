"""Test harness: real servers on loopback, driven over HTTP.

* :class:`RunningGateway` serves the gateway app under uvicorn on a free port.
* :class:`GraphQLClient` runs the operation documents of ``queries/`` against it.
* :class:`SandboxControl` talks to a venue's ``/__sandbox__`` control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from gateway.app import create_app
from gateway.config import GatewayConfig

QUERIES = Path(__file__).resolve().parent.parent / "queries"


def document(name: str) -> str:
    """The text of ``queries/<name>.graphql``."""
    return (QUERIES / f"{name}.graphql").read_text()


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


class RunningGateway:
    """The gateway for ``config`` served on ``127.0.0.1:<free port>`` inside the test loop."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.app = create_app(config)
        self.server = _QuietServer(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning",
                                                  lifespan="on", access_log=False))
        self.task: asyncio.Task[None] | None = None
        self.url = ""

    @property
    def registry(self) -> Any:
        return self.app.state.registry

    async def start(self) -> RunningGateway:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/graphql"
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task

    def client(self, api_key: str | None = None) -> GraphQLClient:
        return GraphQLClient(self.url, api_key)


@contextlib.asynccontextmanager
async def running_gateway(config: GatewayConfig) -> AsyncIterator[RunningGateway]:
    gateway = await RunningGateway(config).start()
    try:
        yield gateway
    finally:
        await gateway.stop()


class GraphQLClient:
    """POSTs operation documents; ``run`` returns the whole response body (``data`` and ``errors``)."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def post(self, query: str, variables: dict[str, Any] | None = None, *,
                   operation: str | None = None, timeout: float = 30.0) -> httpx.Response:
        body: dict[str, Any] = {"query": query, "variables": variables or {}}
        if operation:
            body["operationName"] = operation
        async with httpx.AsyncClient(timeout=timeout) as http:
            return await http.post(self.url, json=body, headers=self.headers)

    async def run(self, name: str, variables: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        response = await self.post(document(name), variables, operation=name, **kw)
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """``run`` that fails the test on any ``errors[]`` entry."""
        body = await self.run(name, variables)
        assert not body.get("errors"), json.dumps(body["errors"], indent=1)
        return body["data"]


class SandboxControl:
    """The control plane of one venue (``/__sandbox__``), from its wire base URL."""

    def __init__(self, base_url: str) -> None:
        root = base_url.split("://", 1)
        host = root[1].split("/", 1)[0]
        self.root = f"{root[0]}://{host}/__sandbox__"

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(timeout=10, verify=False) as http:
            response = await http.request(method, self.root + path, json=body)
            response.raise_for_status()
            return response.json()

    async def stats(self) -> dict[str, int]:
        return (await self._call("GET", "/stats"))["requests"]

    async def total(self) -> int:
        return int((await self._call("GET", "/stats"))["total"])

    async def reset(self) -> None:
        await self._call("POST", "/stats/reset")

    async def fault(self, **fault: Any) -> None:
        await self._call("POST", "/faults", fault)

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def price(self, instrument: str, price: str) -> None:
        await self._call("POST", "/price", {"instrument": instrument, "price": price})

    async def state(self) -> dict[str, Any]:
        return await self._call("GET", "/state")


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Await ``check()`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
