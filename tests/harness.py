"""Test harness: real servers on loopback, driven over HTTP.

* :class:`RunningGateway` serves the gateway app under uvicorn on a free port.
* :class:`GraphQLClient` runs the operation documents of ``queries/`` against it.
* :class:`SandboxControl` talks to a venue's ``/__sandbox__`` control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
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

    def __init__(self, config: GatewayConfig, **app_options: Any) -> None:
        self.config = config
        self.app = create_app(config, **app_options)
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
async def running_gateway(config: GatewayConfig, **app_options: Any) -> AsyncIterator[RunningGateway]:
    gateway = await RunningGateway(config, **app_options).start()
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

    async def log(self) -> list[dict[str, Any]]:
        """The venue's wire requests in arrival order (``seq``, ``method``, ``path``, ``query``, ``at``)."""
        return list((await self._call("GET", "/log"))["requests"])

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


class Subscription:
    """One graphql-transport-ws subscription on its own WebSocket connection."""

    def __init__(self, url: str, name: str, variables: dict[str, Any] | None, api_key: str | None) -> None:
        self.url = url.replace("http://", "ws://")
        self.name = name
        self.variables = variables or {}
        self.api_key = api_key
        self.ws: Any = None

    async def __aenter__(self) -> Subscription:
        import websockets

        self.ws = await websockets.connect(self.url, subprotocols=["graphql-transport-ws"], max_queue=None)
        init: dict[str, Any] = {"type": "connection_init"}
        if self.api_key:
            init["payload"] = {"Authorization": f"Bearer {self.api_key}"}
        await self.ws.send(json.dumps(init))
        ack = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        await self.ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": document(self.name), "variables": self.variables, "operationName": self.name}}))
        return self

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next ``next`` payload's data (pings are answered and skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no subscription message")
            message = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            if message["type"] == "pong":
                continue
            assert message["type"] == "next", message
            payload = message["payload"]
            assert not payload.get("errors"), payload
            return payload["data"]

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> list[dict[str, Any]]:
        """Events up to and including the first that satisfies ``predicate``."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            event = (await self.next(max(deadline - time.monotonic(), 0.01)))["orderStatusChanged"]
            seen.append(event)
            if predicate(event):
                return seen

    async def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """Whatever arrives within ``seconds`` (for "receives nothing")."""
        got: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(await self.next(seconds))
        return got

    async def abort(self) -> None:
        """Drop the connection without a close handshake."""
        self.ws.transport.abort()

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(port: int, folder: Path, *options: str) -> subprocess.Popen[bytes]:
    """A redis-server on 127.0.0.1:``port`` without persistence (``folder`` its working directory,
    ``options`` more of its flags), once it accepts connections; raises ``RuntimeError`` when it is
    not installed (``make test`` installs it) or does not start within 10 s."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run the tests with `make test`, which installs it")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder), *options], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


@contextlib.asynccontextmanager
async def served_process(*args: str, env: dict[str, str] | None = None,
                         options: tuple[str, ...] = (), cwd: str | None = None) -> AsyncIterator[tuple[str, list[str]]]:
    """``broker-gateway OPTIONS serve ARGS`` as a separate process; yields its GraphQL URL and its output
    lines (the list keeps growing while the process runs). ``cwd``: the checkout whose ``gateway``
    package runs (``python -m`` imports from the working directory first; default: this one's)."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", *options, "serve", "--port", str(port), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=cwd)
    lines: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "serve exited early:\n" + "".join(lines)
                lines.append(line)
                if "GraphiQL:" in line or "GraphQL endpoint:" in line:
                    break
        drain = asyncio.create_task(_drain(proc.stdout, lines))  # keep the pipe from filling up
        yield f"http://127.0.0.1:{port}/graphql", lines
    finally:
        proc.terminate()
        await proc.wait()
        if drain is not None:
            await drain


async def _drain(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode())


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


async def first_account(client: GraphQLClient) -> str:
    """The id of the first account of the first connection ``client`` sees (one small Dashboard)."""
    data = await client.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1})
    return str(data["connections"][0]["accounts"][0]["id"])


async def place_market_buy(client: GraphQLClient, account: str, **kw: Any) -> dict[str, Any]:
    """``placeOrder``: a market buy of 1 DE0008232125 (``kw`` overrides input fields); the placed order."""
    result = (await client.data("PlaceOrder", {"input": {
        "accountId": account, "instrument": {"isin": "DE0008232125"}, "side": "BUY", "type": "MARKET",
        "quantity": "1", **kw}}))["placeOrder"]
    assert result["__typename"] == "OrderPlaced", result
    return dict(result["order"])
