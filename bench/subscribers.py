"""Benchmark: N concurrent orderStatusChanged subscribers on one gateway process.

Measures, for every FILLED event every subscriber receives, the delay from the broker's change (the
venue's execution time, ``executedAt`` → ``Order.updatedAt``) to the client's receipt, and the
gateway's resident memory per subscriber. Everything runs on loopback: the lemon paper venue in this
process, the gateway as a separate ``broker-gateway serve --config`` process, the subscribers as
WebSocket clients in this process.

    .venv/bin/python bench/subscribers.py --subscribers 1000 --orders 10 --fast-interval 1.0

Not a test: it prints figures; bench/README.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.sandbox.engine import EngineConfig  # noqa: E402
from gateway.sandbox.lemon import API_KEY  # noqa: E402
from gateway.sandbox.lemon.app import LemonSettings  # noqa: E402
from gateway.sandbox.venue import SandboxRunner  # noqa: E402
from tests.harness import GraphQLClient, Subscription, served_process  # noqa: E402


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

        async def collect(sub: Subscription, order_id: str) -> None:
            while True:
                event = (await sub.next(30))["orderStatusChanged"]
                if event["order"]["id"] == order_id and event["status"] == "FILLED":
                    received = time.time()
                    changed = datetime.fromisoformat(event["order"]["updatedAt"]).timestamp()
                    latencies.append(received - changed)
                    return

        for _ in range(args.orders):
            placed = (await client.data("PlaceOrder", {"input": {
                "accountId": account, "instrument": {"isin": "DE0008232125"}, "side": "BUY", "type": "MARKET",
                "quantity": "1"}}))["placeOrder"]
            await asyncio.gather(*(collect(s, placed["order"]["id"]) for s in subs))
        await asyncio.gather(*(s.__aexit__(None, None, None) for s in subs))

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
