"""Benchmark: N concurrent orderStatusChanged subscribers on one gateway process or on N workers.

Measures, for the first event of each order placed with the gateway's own ``placeOrder`` (published at
once), the delay from the mutation's response to each subscriber's receipt; the gateway's CPU time
(``/proc/<pid>/stat`` utime + stime, summed over the serve process and all its descendants, i.e. every
worker) per delivery while the events fan out, against a bare WebSocket broadcast of the same bytes to
the same number of sockets on the same stack (Starlette on uvicorn, a separate process started by this
run); and the gateway's resident memory (summed over the same processes) per subscriber. Everything
runs on loopback: the lemon paper venue in this process, the gateway as a separate
``broker-gateway serve --config`` process, the subscribers in ``--client-processes`` client processes
(``bench/subclients.py``: bare RFC 6455 sockets, order id found in the raw text, receipt times from
``time.monotonic()``, which is system-wide), the same clients for the bare broadcast.

    .venv/bin/python bench/subscribers.py --subscribers 1000 --orders 5 --client-processes 2
    .venv/bin/python bench/subscribers.py --subscribers 10000 --workers 2 --orders 5 --client-processes 2

``--workers N`` (N > 1) starts a redis-server on a free port and runs ``serve --workers N`` on the Redis
event bus. ``--profile FILE`` records the gateway processes with py-spy during the orders (collapsed
stacks) and prints the top frames; its run's figures include py-spy's own cost.

Not a test: it prints figures; bench/README.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, ROOT)

from gateway.sandbox.engine import EngineConfig  # noqa: E402
from gateway.sandbox.lemon.app import LemonSettings  # noqa: E402
from gateway.sandbox.venue import SandboxRunner  # noqa: E402
from tests.conftest import lemon_config_file  # noqa: E402
from tests.harness import GraphQLClient, document  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from subclients import ClientPool  # noqa: E402


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


async def _bare(n: int, message: str, order_id: str, rounds: int, client_processes: int) -> dict[str, Any]:
    """Broadcast ``message`` (``order_id`` replaced by a per-round marker) ``rounds`` times to ``n``
    sockets of a bare Starlette server, received by the same client processes: CPU seconds per delivery
    and the delays from the sending of each broadcast request (the server sends before it answers) to
    each receipt."""
    import subprocess

    import httpx

    from tests.harness import free_port

    port = free_port()
    code = (f"import sys, uvicorn; sys.path.insert(0, {ROOT + '/bench'!r}); import subscribers; "
            f"uvicorn.run(subscribers.bare_app(), host='127.0.0.1', port={port}, log_level='warning', "
            f"ws_per_message_deflate=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)  # noqa: ASYNC220 - the run's bare server
    pool = ClientPool(f"ws://127.0.0.1:{port}/ws", "bare", n, client_processes)
    try:
        for _ in range(100):
            try:
                async with httpx.AsyncClient() as http:
                    await http.post(f"http://127.0.0.1:{port}/broadcast", content=b"")
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        await pool.start()
        await asyncio.sleep(0.5)
        cpu = 0.0
        latencies: list[float] = []
        per_round: list[str] = []
        async with httpx.AsyncClient() as http:
            for r in range(rounds):
                marker = f"bare{r:0{max(len(order_id) - 4, 1)}d}"
                before = _cpu_s(proc.pid)
                sent = time.monotonic()  # the bare server starts sending before it answers
                await http.post(f"http://127.0.0.1:{port}/broadcast", content=message.replace(order_id, marker).encode())
                times, _ = await pool.collect(marker)
                await asyncio.sleep(0.2)
                cpu += _cpu_s(proc.pid) - before
                latencies += [t - sent for t in times]
                per_round.append(_round(times, sent))
        await pool.close()
        return {"cpu_per_delivery": cpu / max(len(latencies), 1), "latencies": sorted(latencies), "rounds": per_round}
    finally:
        proc.terminate()
        proc.wait()


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from the ppid field of /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _cpu_all(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += _cpu_s(pid)
    return total


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _sockets(pid: int) -> int:
    """How many sockets ``pid`` holds (its share of the subscribers, plus a few)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            count += str(fd.readlink()).startswith("socket:")
    return count


def _round(times: list[float], start: float) -> str:
    """One order's (or broadcast's) receipts after ``start``: ``p50/p99/max`` in ms."""
    delays = sorted(t - start for t in times) or [float("nan")]
    return "/".join(f"{1000 * v:.0f}" for v in (statistics.median(delays), _percentile(delays, 0.99), delays[-1]))


def _percentile(values: list[float], q: float) -> float:
    return values[max(int(len(values) * q) - 1, 0)]


@contextlib.asynccontextmanager
async def _redis() -> AsyncIterator[str]:
    """A throwaway redis-server on a free port (no persistence); yields its URL."""
    from tests.harness import free_port, start_redis

    port = free_port()
    proc = start_redis(port, Path(tempfile.mkdtemp()), "--maxclients", "10000")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.asynccontextmanager
async def _serve(config: Path, workers: int) -> AsyncIterator[tuple[str, int]]:
    """``broker-gateway serve --config`` (with ``--workers`` when > 1); yields its GraphQL URL and pid."""
    from tests.harness import free_port

    port = free_port()
    extra = ["--workers", str(workers)] if workers > 1 else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--config", str(config), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT)
    assert proc.stdout is not None
    lines: list[str] = []

    async def drain() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            lines.append(line.decode())

    try:
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    raise RuntimeError("serve exited early:\n" + "".join(lines))
                lines.append(line)
                if "GraphQL endpoint:" in line or "GraphiQL:" in line:
                    break
        reader = asyncio.create_task(drain())
        yield f"http://127.0.0.1:{port}/graphql", proc.pid
    finally:
        proc.terminate()
        await proc.wait()
        with contextlib.suppress(Exception):
            await reader
        if any("Traceback" in line for line in lines):
            print("".join(lines)[-3000:], file=sys.stderr)


def _frame(frame: str) -> str:
    """``func (path:line)`` → ``func (short path)``: lines of one function counted together."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0].rstrip(")")
    for prefix in ("site-packages/", ROOT + "/", "/lib/python3.11/"):
        if prefix in path:
            path = path.split(prefix, 1)[1]
    return f"{name} ({path})"


def _top_frames(path: str, count: int = 25) -> str:
    """The ``count`` functions with the most samples on top of the stack (self) and anywhere on it
    (total), from py-spy's collapsed ("raw") output."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in Path(path).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        frames = [_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        hits = int(n)
        samples += hits
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + hits
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + hits
    out = [f"{samples} samples; self %, total %, frame"]
    for frame, hits in sorted(own.items(), key=lambda kv: -kv[1])[:count]:
        out.append(f"{100 * hits / samples:5.1f} {100 * total[frame] / samples:5.1f}  {frame}")
    return "\n".join(out)


def lemon_venue() -> SandboxRunner:
    """The lemon paper venue the subscriber benchmarks place on (fast engine, rate limit lifted)."""
    return SandboxRunner(["lemon"], config=EngineConfig.fast(),
                         venue_options={"lemon": {"settings": LemonSettings(rate_limit=100_000)}})


def subscribers_config(lemon_url: str, more: str = "") -> Path:
    """A development config file with one lemon connection to ``lemon_url``, ``more`` TOML (before
    ``[transport]``), and room for 1 000 sockets from 127.0.0.1 before their ``connection_ack``."""
    return lemon_config_file(Path(tempfile.mkdtemp()) / "bench.toml", lemon_url, head='profile = "development"',
                             keys=None, more=f"""{more}
[transport]
# every subscriber of a run comes from 127.0.0.1, and they connect 50 at a time per client process
max_unauthenticated_sockets_per_client = 1000
""")


async def main(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the gateway and the clients
    venue = lemon_venue()
    urls = await venue.start()
    async with contextlib.AsyncExitStack() as stack:
        events = ""
        if args.workers > 1:
            redis_url = await stack.enter_async_context(_redis())
            events = f'backend = "redis"\nredis_url = "{redis_url}"\nstream_key = "bench-subscribers"'
        config = subscribers_config(urls["lemon"], f"""
[events]
fast_interval = {args.fast_interval}
slow_interval = {args.fast_interval}
{events}
""")
        url, serve_pid = await stack.enter_async_context(_serve(config, args.workers))
        client = GraphQLClient(url)
        for _ in range(100):  # the workers answer once their apps have started
            with contextlib.suppress(Exception):
                account = (await client.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1}))[
                    "connections"][0]["accounts"][0]["id"]
                break
            await asyncio.sleep(0.2)
        for _ in range(4 * args.workers):  # warm every worker (each new connection may land on another)
            await GraphQLClient(url).data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1})
        await asyncio.sleep(0.5)
        pids = _descendants(serve_pid)
        rss_before = sum(_rss_kib(p) for p in pids)
        sockets_before = {p: _sockets(p) for p in pids}
        subscribe = json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": document("OrderStatusChanged"), "variables": {"accountId": account},
            "operationName": "OrderStatusChanged"}})
        pool = ClientPool(url.replace("http://", "ws://"), "graphql", args.subscribers, args.client_processes,
                          subscribe)
        started = time.monotonic()
        await pool.start()
        connect_s = time.monotonic() - started
        await asyncio.sleep(2 * args.fast_interval + 0.5)
        rss_after = sum(_rss_kib(p) for p in pids)
        per_process = {p: _sockets(p) - sockets_before[p] for p in pids}

        profiler = None
        if args.profile:
            profiler = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw", "--output", args.profile,
                "--pid", str(serve_pid), "--subprocesses", "--rate", "100", "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            await asyncio.sleep(1.0)

        latencies: list[float] = []
        missing = 0
        rounds: list[str] = []
        message, message_order = "", ""
        cpu = client_cpu = 0.0
        client_pids = [proc.pid for proc in pool.procs]
        for _ in range(args.orders):
            cpu_before = _cpu_all(pids)
            client_before = _cpu_all(client_pids)
            placed = (await client.data("PlaceOrder", {"input": {
                "accountId": account, "instrument": {"isin": "DE0008232125"}, "side": "BUY", "type": "LIMIT",
                "limitPrice": "1.00", "quantity": "1"}}))["placeOrder"]
            responded = time.monotonic()
            order_id = placed["order"]["id"]
            times, sample = await pool.collect(order_id)
            await asyncio.sleep(0.3)
            cpu += _cpu_all(pids) - cpu_before
            client_cpu += _cpu_all(client_pids) - client_before
            latencies += [t - responded for t in times]
            rounds.append(_round(times, responded))
            missing += args.subscribers - len(times)
            if sample:
                message, message_order = sample, order_id
            await client.data("CancelOrder", {"input": {"orderId": order_id}})
            await asyncio.sleep(1.0)  # the order's later events (SUBMITTED, CANCELED) reach the clients
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            await profiler.wait()
        await pool.close()
    print("gateway phase done", flush=True)
    bare = await _bare(args.subscribers, message, message_order, args.orders, args.client_processes)
    await venue.stop()
    latencies.sort()
    bare_latencies = bare["latencies"]
    result = {
        "subscribers": args.subscribers,
        "workers": args.workers,
        "client_processes": args.client_processes,
        "orders": args.orders,
        "fast_interval_s": args.fast_interval,
        "connect_s": round(connect_s, 1),
        "sockets_per_gateway_process": sorted(per_process.values(), reverse=True),
        "deliveries": len(latencies),
        "missing_deliveries": missing,
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "latency_max_ms": round(latencies[-1] * 1000, 1),
        "bare_latency_p50_ms": round(statistics.median(bare_latencies) * 1000, 1),
        "bare_latency_p99_ms": round(_percentile(bare_latencies, 0.99) * 1000, 1),
        "rounds_p50_p99_max_ms": rounds,
        "bare_rounds_p50_p99_max_ms": bare["rounds"],
        "gateway_cpu_per_delivery_us": round(cpu / len(latencies) * 1e6, 1),
        "client_cpu_per_delivery_us": round(client_cpu / len(latencies) * 1e6, 1),
        "bare_broadcast_cpu_per_delivery_us": round(bare["cpu_per_delivery"] * 1e6, 1),
        "cpu_ratio_to_bare": round(cpu / len(latencies) / bare["cpu_per_delivery"], 2)
        if bare["cpu_per_delivery"] else None,
        "gateway_rss_before_kib": rss_before,
        "gateway_rss_after_kib": rss_after,
        "memory_per_subscriber_kib": round((rss_after - rss_before) / args.subscribers, 1),
    }
    print(json.dumps(result, indent=2))
    if args.profile:
        print(_top_frames(args.profile))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--orders", type=int, default=5)
    parser.add_argument("--fast-interval", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N on a throwaway redis-server")
    parser.add_argument("--client-processes", type=int, default=2, help="processes the subscribers are spread over")
    parser.add_argument("--profile", metavar="FILE", help="py-spy record the gateway during the orders")
    asyncio.run(main(parser.parse_args()))
