"""Bounded before parsing: every row of issue 10's table answers a typed refusal within 100 ms while a
parallel small query answers within 100 ms, and the gateway's RSS grows by less than 20 MiB.

The gateway runs as its own process (``broker-gateway serve --config``, production profile) so that
its RSS is its own; the venue is the session's lemon sandbox, whose request count shows that no
refused operation reached the broker.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import MAIN_KEY, lemon_config_file
from tests.harness import SandboxControl, free_port

BOUND = 0.100  # seconds: the bound for the refusal and for the parallel small query
SMALL = "{ connections { name } }"
AUTH = {"Authorization": f"Bearer {MAIN_KEY}"}


@dataclass
class Served:
    url: str
    pid: int
    port: int

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
async def served(lemon_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    path = tmp_path_factory.mktemp("bounded") / "gateway.toml"
    lemon_config_file(path, lemon_url)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--config", str(path), "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(60):
        while "GraphQL endpoint:" not in (line := (await proc.stdout.readline()).decode()):
            assert line, "serve exited early:\n" + "".join(lines)
            lines.append(line)

    async def drain() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            lines.append(line.decode())

    drainer = asyncio.create_task(drain())
    try:
        yield Served(f"http://127.0.0.1:{port}/graphql", proc.pid, port)
    finally:
        proc.terminate()
        await proc.wait()
        await drainer
    assert not any("Traceback" in line for line in lines), "".join(lines)


async def _timed_post(http: httpx.AsyncClient, url: str, **kw: Any) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = await http.post(url, headers={**AUTH, **kw.pop("headers", {})}, **kw)
    return time.perf_counter() - start, response


async def _with_small_query(served: Served, refusal: Any, name: str = "") -> Any:
    """``refusal`` (a coroutine giving ``(seconds, outcome)``) alongside the small query; both within BOUND."""
    async with httpx.AsyncClient(timeout=30) as http:
        await http.post(served.url, json={"query": SMALL}, headers=AUTH)  # the connection is open and warm
        small = asyncio.ensure_future(_timed_post(http, served.url, json={"query": SMALL}))
        took, outcome = await refusal
        small_took, small_response = await small
    assert small_response.status_code == 200 and small_response.json()["data"]["connections"] == [{"name": "lemon"}]
    assert took < BOUND, f"{name}: the refusal took {took * 1000:.0f} ms"
    assert small_took < BOUND, f"{name}: the small query took {small_took * 1000:.0f} ms"
    return outcome


async def _graphql_refusal(served: Served, body: bytes) -> tuple[float, httpx.Response]:
    """POST ``body`` over a raw socket (a client that keeps writing while the gateway has answered)."""
    took, answer = await _raw_post(served, [body], len(body), chunked=False)
    head, _, content = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return took, httpx.Response(status, content=content, headers={"content-type": "application/json"})


def _code(response: httpx.Response) -> str:
    body = response.json()
    assert not body.get("data"), body
    return str(body["errors"][0]["extensions"]["code"])


PLACE = ("mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { __typename } }")


#: an account of the main key (the refused operations never reach it; without the bounds they would)
ACCOUNT: dict[str, str] = {}


def _order(**fields: str) -> dict[str, Any]:
    return {"accountId": ACCOUNT.get("id", "QWNjb3VudDpsZW1vbjpub25l"), "instrument": {"isin": "US0378331005"}, "side": "BUY",
            "type": "LIMIT", "quantity": "1", "limitPrice": "10", **fields}


def _rows() -> list[tuple[str, bytes, int, str]]:
    """(name, request body, expected status, expected ``extensions.code``; "" for a 400 without one)."""
    return [
    *[(f"quantity {q}", json.dumps({"query": PLACE, "variables": {"input": _order(quantity=q)}}).encode(),
       200, "BAD_USER_INPUT") for q in ("1e1000000", "1e400000", "1e200000")],
    ("limitPrice 1e100000", json.dumps({"query": PLACE, "variables": {"input": _order(limitPrice="1e100000")}}).encode(),
     200, "BAD_USER_INPUT"),
    ("quantity literal 1e1000000", json.dumps({"query": PLACE.replace("$input: PlaceOrderInput!", "")
                                               .replace("$input", '{accountId: "x", instrument: {isin: "US0378331005"}, '
                                                        'side: BUY, type: MARKET, quantity: "1e1000000"}')}).encode(),
     200, "BAD_USER_INPUT"),
    ("a 1 000 000-element status list", json.dumps({
        "query": "query($s: [OrderStatus!]) { orders(filter: {status: $s}) { totalCount } }",
        "variables": {"s": ["FILLED"] * 1_000_000}}).encode(), 413, "PAYLOAD_TOO_LARGE"),
    ("a 50 000-element status list (under the body limit)", json.dumps({
        "query": "query($s: [OrderStatus!]) { orders(filter: {status: $s}) { totalCount } }",
        "variables": {"s": ["FILLED"] * 50_000}}).encode(), 200, "BAD_USER_INPUT"),
    ("a 5 MB string literal in an orders filter", json.dumps({
        "query": '{ orders(filter: {symbol: "' + "A" * 5_000_000 + '"}) { totalCount } }'}).encode(),
     413, "PAYLOAD_TOO_LARGE"),
    ("a 500 kB string literal (under the body limit)", json.dumps({
        "query": '{ orders(filter: {symbol: "' + "A" * 500_000 + '"}) { totalCount } }'}).encode(),
     200, "QUERY_TOO_COMPLEX"),
    ("a 90 kB string literal (under the document limit)", json.dumps({
        "query": '{ orders(filter: {symbol: "' + "A" * 90_000 + '"}) { totalCount } }'}).encode(),
     200, "BAD_USER_INPUT"),
    ("a 500 kB string variable", json.dumps({
        "query": "query($s: String) { orders(filter: {symbol: $s}) { totalCount } }",
        "variables": {"s": "A" * 500_000}}).encode(), 200, "BAD_USER_INPUT"),
    ("JSON variables nested 100 000 levels", (b'{"query": "query($f: OrderFilter) { orders(filter: $f) { totalCount } }", '
                                              b'"variables": {"f": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"),
     400, ""),
    ("JSON variables nested 500 levels", (b'{"query": "query($f: OrderFilter) { orders(filter: $f) { totalCount } }", '
                                          b'"variables": {"f": ' + b"[" * 500 + b"]" * 500 + b"}}"),
     200, "BAD_USER_INPUT"),
    ("a 5000-digit integer in the variables", (b'{"query": "query($f: Int) { orders(first: $f) { totalCount } }", '
                                               b'"variables": {"f": ' + b"9" * 5000 + b"}}"), 400, ""),
]


async def test_every_row_is_refused_fast_and_the_gateway_stays_small(served: Served, lemon_url: str) -> None:
    venue = SandboxControl(lemon_url)
    async with httpx.AsyncClient(timeout=30) as http:  # warm up: every code path once
        for _ in range(3):
            await http.post(served.url, json={"query": SMALL}, headers=AUTH)
            await http.post(served.url, json={"query": PLACE, "variables": {"input": _order(quantity="1e5")}},
                            headers=AUTH)
        ACCOUNT["id"] = (await http.post(served.url, json={"query": "{ accounts { id } }"}, headers=AUTH)).json()[
            "data"]["accounts"][0]["id"]
    rows = _rows()
    rss_before = served.rss_kib()
    upstream_before = await venue.total()
    for name, body, status, code in rows:
        response: httpx.Response = await _with_small_query(served, _graphql_refusal(served, body), name)
        assert response.status_code == status, (name, response.status_code, response.text[:300])
        if code:
            assert _code(response) == code, (name, response.text[:300])
    body_refusal = await _with_small_query(served, _raw_body_refusal(served, 50_000_000, chunked=False))
    assert body_refusal.startswith(b"HTTP/1.1 413") and b"PAYLOAD_TOO_LARGE" in body_refusal
    streamed = await _with_small_query(served, _raw_body_refusal(served, 50_000_000, chunked=True))
    assert streamed.startswith(b"HTTP/1.1 413") and b"PAYLOAD_TOO_LARGE" in streamed
    assert await venue.total() == upstream_before, "a refused operation reached the broker"
    grown = (served.rss_kib() - rss_before) / 1024
    assert grown < 20, f"RSS grew by {grown:.1f} MiB"


def _comment_body(size: int) -> tuple[list[bytes], int]:
    """A tiny query plus a comment: ``size`` bytes in 64 KiB pieces (the same piece again and again)."""
    prefix = b'{"query": "{ connections { name } } #'
    chunk = b"x" * 65_536
    return [prefix, *[chunk] * ((size - len(prefix)) // len(chunk))], size


async def _raw_body_refusal(served: Served, size: int, *, chunked: bool) -> tuple[float, bytes]:
    pieces, total = _comment_body(size)
    return await _raw_post(served, pieces, total, chunked=chunked)


class _Answer(asyncio.Protocol):
    """Collects the answer's bytes; ``done`` once its head and ``Content-Length`` body are in (a reset
    after the answer, for the body the gateway did not read, loses nothing already received)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.done = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.data += data
        head, sep, body = bytes(self.data).partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if len(body) >= length:
                self.done.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.done.set()


async def _raw_post(served: Served, pieces: list[bytes], size: int, *, chunked: bool) -> tuple[float, bytes]:
    """POST the body ``pieces`` (``size`` bytes) with a ``Content-Length`` or chunked, written as fast as
    the gateway reads them, while the answer is awaited; the seconds until the whole answer has
    arrived, and the answer (head and body)."""
    loop = asyncio.get_running_loop()
    transport, answer = await loop.create_connection(_Answer, "127.0.0.1", served.port)
    head = (f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {MAIN_KEY}\r\n"
            "Content-Type: application/json\r\n"
            + ("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n") + "\r\n").encode()

    async def pump() -> None:
        transport.write(head)
        for piece in pieces:
            if transport.is_closing() or answer.done.is_set():
                return
            transport.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            while transport.get_write_buffer_size() > 1_000_000 and not answer.done.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.001)  # as fast as the gateway reads, no faster (a transport has no event)
        if chunked:
            transport.write(b"0\r\n\r\n")

    start = time.perf_counter()
    pumping = asyncio.ensure_future(pump())
    try:
        await asyncio.wait_for(answer.done.wait(), 10)
        took = time.perf_counter() - start
    finally:
        pumping.cancel()
        transport.close()
    assert answer.data, "no answer"
    return took, bytes(answer.data)


async def test_a_websocket_message_over_the_frame_limit_closes_the_socket(served: Served) -> None:
    url = served.url.replace("http://", "ws://")
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"], max_size=None) as ws:  # type: ignore[attr-defined]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {MAIN_KEY}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        start = time.perf_counter()
        with pytest.raises(websockets.ConnectionClosed) as closed:  # the close may come while the frame is sent
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription { orderStatusChanged { eventId } } #" + "x" * 1_500_000}}))
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert time.perf_counter() - start < 1


async def test_the_app_itself_closes_a_socket_whose_message_is_over_the_limit(gateway: Any) -> None:
    """Under a server without a frame limit of its own (the harness's uvicorn keeps its 16 MiB default)."""
    url = gateway.url.replace("http://", "ws://")
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"], max_size=None) as ws:  # type: ignore[attr-defined]
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        with pytest.raises(websockets.ConnectionClosed) as closed:  # the close may come while the frame is sent
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription { orderStatusChanged { eventId } } #" + "x" * 1_500_000}}))
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_deep_json_to_the_stream_endpoint_is_a_400(gateway: Any) -> None:
    deep = b'{"query": "subscription { orderStatusChanged { eventId } }", "variables": {"a": ' \
        + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    async with httpx.AsyncClient(timeout=10) as http:
        posted = await http.post(gateway.url + "/stream", content=deep, headers={"Content-Type": "application/json"})
        got = await http.get(gateway.url + "/stream", params={
            "query": "subscription { orderStatusChanged { eventId } }", "variables": "[" * 5_000 + "]" * 5_000})
    assert posted.status_code == 400 and got.status_code == 400
