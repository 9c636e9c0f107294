"""Benchmark: N concurrent orderStatusChanged subscribers on one gateway process.

Measures, for the first event of each order placed with the gateway's own ``placeOrder`` (published at
once), the delay from the mutation's response to each subscriber's receipt; the gateway's CPU time
(``/proc/<pid>/stat`` utime + stime) per delivery while the events fan out, against a bare WebSocket
broadcast of the same bytes to the same number of sockets on the same stack (Starlette on uvicorn, a
separate process started by this run); and the gateway's resident memory per subscriber. Everything
runs on loopback: the lemon paper venue in this process, the gateway as a separate
``broker-gateway serve --config`` process, the subscribers as WebSocket clients in this process.

    .venv/bin/python bench/subscribers.py --subscribers 1000 --orders 10 --fast-interval 1.0

Not a test: it prints figures; bench/README.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, ROOT)

from gateway.sandbox.engine import EngineConfig  # noqa: E402
from gateway.sandbox.lemon import API_KEY  # noqa: E402
from gateway.sandbox.lemon.app import LemonSettings  # noqa: E402
from gateway.sandbox.venue import SandboxRunner  # noqa: E402
from tests.harness import GraphQLClient, Subscription, served_process  # noqa: E402


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_app() -> Any:
    """A bare broadcast server: ``/ws`` holds sockets, ``POST /broadcast`` sends its body to each."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    sockets: set[WebSocket] = set()

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        sockets.add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            sockets.discard(websocket)

    async def broadcast(request: Request) -> PlainTextResponse:
        text = (await request.body()).decode()
        for sock in list(sockets):
            asyncio.get_running_loop().create_task(sock.send_text(text))
        return PlainTextResponse(str(len(sockets)))

    return Starlette(routes=[WebSocketRoute("/ws", ws), Route("/broadcast", broadcast, methods=["POST"])])


async def _bare(n: int, message: str, rounds: int) -> float:
    """CPU seconds per delivery of ``message`` broadcast to ``n`` sockets by the bare server."""
    import subprocess

    import httpx
    import websockets

    from tests.harness import free_port

    port = free_port()
    code = (f"import sys, uvicorn; sys.path.insert(0, {ROOT + '/bench'!r}); import subscribers; "
            f"uvicorn.run(subscribers.bare_app(), host='127.0.0.1', port={port}, log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)  # noqa: ASYNC220 - the run's bare server
    try:
        for _ in range(100):
            try:
                async with httpx.AsyncClient() as http:
                    await http.post(f"http://127.0.0.1:{port}/broadcast", content=b"")
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        sockets = []
        for start in range(0, n, 100):
            sockets += await asyncio.gather(*(websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=None)
                                              for _ in range(start, min(start + 100, n))))
        got = 0

        async def drain(sock: Any) -> None:
            nonlocal got
            await sock.recv()
            got += 1

        cpu = 0.0
        for _ in range(rounds):
            readers = [asyncio.create_task(drain(s)) for s in sockets]
            before = _cpu_s(proc.pid)
            async with httpx.AsyncClient() as http:
                await http.post(f"http://127.0.0.1:{port}/broadcast", content=message.encode())
            await asyncio.gather(*readers)
            await asyncio.sleep(0.2)
            cpu += _cpu_s(proc.pid) - before
        await asyncio.gather(*(s.close() for s in sockets))
        return cpu / (rounds * n)
    finally:
        proc.terminate()
        proc.wait()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _gateway_pid(port: int) -> int:
    """The pid listening on ``port`` (from /proc/net/tcp and the fd tables)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if int(parts[1].split(":")[1], 16) == port and parts[3] == "0A":
            inodes.add(parts[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = str(fd.readlink())
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(proc.name)
        except OSError:
            continue
    raise RuntimeError("gateway process not found")


async def main(args: argparse.Namespace) -> None:
    venue = SandboxRunner(["lemon"], config=EngineConfig.fast(),
                          venue_options={"lemon": {"settings": LemonSettings(rate_limit=100_000)}})
    urls = await venue.start()
    config = Path(tempfile.mkdtemp()) / "bench.toml"
    config.write_text(f"""
profile = "development"

[connections.lemon]
broker = "lemon"
base_url = "{urls['lemon']}"
credentials = {{ api_key = "{API_KEY}" }}
rate_limit = 10000


[events]
fast_interval = {args.fast_interval}
slow_interval = {args.fast_interval}
""")
    async with served_process("--config", str(config)) as (url, _):
        pid = _gateway_pid(int(url.split(":")[2].split("/")[0]))
        client = GraphQLClient(url)
        account = (await client.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1}))[
            "connections"][0]["accounts"][0]["id"]
        rss_before = _rss_kib(pid)
        subs = []
        for start in range(0, args.subscribers, 100):
            batch = [Subscription(url, "OrderStatusChanged", {"accountId": account}, None)
                     for _ in range(start, min(start + 100, args.subscribers))]
            await asyncio.gather(*(s.__aenter__() for s in batch))
            subs.extend(batch)
        await asyncio.sleep(2 * args.fast_interval + 0.5)
        rss_after = _rss_kib(pid)

        latencies: list[float] = []
        message = ""

        async def first_event(sub: Subscription, order_id: str, received: list[float]) -> None:
            nonlocal message
            while True:
                raw = await asyncio.wait_for(sub.ws.recv(), 30)
                at = time.time()
                body = json.loads(raw)
                if body.get("type") != "next":
                    continue
                if body["payload"]["data"]["orderStatusChanged"]["order"]["id"] == order_id:
                    received.append(at)
                    message = raw
                    return

        async def drain(sub: Subscription) -> None:  # the order's later events (SUBMITTED, FILLED)
            with contextlib.suppress(TimeoutError):
                while True:
                    await asyncio.wait_for(sub.ws.recv(), 0.3)

        cpu = 0.0
        for _ in range(args.orders):
            received: list[float] = []
            waiting = {}
            cpu_before = _cpu_s(pid)
            placed = (await client.data("PlaceOrder", {"input": {
                "accountId": account, "instrument": {"isin": "DE0008232125"}, "side": "BUY", "type": "LIMIT",
                "limitPrice": "1.00", "quantity": "1"}}))["placeOrder"]
            responded = time.time()
            order_id = placed["order"]["id"]
            waiting = [asyncio.create_task(first_event(s, order_id, received)) for s in subs]
            await asyncio.gather(*waiting)
            await asyncio.sleep(0.3)
            cpu += _cpu_s(pid) - cpu_before
            latencies.extend(at - responded for at in received)
            await client.data("CancelOrder", {"input": {"orderId": order_id}})
            await asyncio.gather(*(drain(s) for s in subs))
        await asyncio.gather(*(s.__aexit__(None, None, None) for s in subs))
        print("gateway phase done", flush=True)
        bare_cpu = await _bare(args.subscribers, message, args.orders)

    await venue.stop()
    latencies.sort()
    result = {
        "subscribers": args.subscribers,
        "orders": args.orders,
        "fast_interval_s": args.fast_interval,
        "deliveries": len(latencies),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "latency_max_ms": round(latencies[-1] * 1000, 1),
        "gateway_cpu_per_delivery_us": round(cpu / len(latencies) * 1e6, 1),
        "bare_broadcast_cpu_per_delivery_us": round(bare_cpu * 1e6, 1),
        "cpu_ratio_to_bare": round(cpu / len(latencies) / bare_cpu, 2) if bare_cpu else None,
        "gateway_rss_before_kib": rss_before,
        "gateway_rss_after_kib": rss_after,
        "memory_per_subscriber_kib": round((rss_after - rss_before) / args.subscribers, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--orders", type=int, default=10)
    parser.add_argument("--fast-interval", type=float, default=1.0)
    asyncio.run(main(parser.parse_args()))
