"""Benchmark: many clients on one IBKR Client Portal session (issue #9).

1. ``dashboards``: N concurrent ``Dashboard`` queries (N = 1, 10, 50) over the IBKR Financial Advisor
   book (master + 20 sub-accounts, 7 allocation groups) → requests the venue received per round and
   p50 / p99 latency of the Dashboards, against one Dashboard alone. The venue paces like ``serve``'s
   demo (live orders 1 per 0.1 s, 100 requests a second).
2. ``writes``: the latency of ``placeOrder`` while 5 cold Dashboards run under IBKR's documented pacing
   (live orders 1 per 5 s, 10 requests a second, a 10-minute penalty box for a violation).

Everything on loopback: the IBKR paper venue in this process, the gateway as a separate
``broker-gateway serve --config`` process, the clients in this process.

    .venv/bin/python bench/sessions.py dashboards --rounds 5
    .venv/bin/python bench/sessions.py writes --rounds 2

Not a test: it prints figures; bench/README.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.domain.keys import AccountKey  # noqa: E402
from gateway.graphql.ids import encode  # noqa: E402
from gateway.sandbox.engine import EngineConfig  # noqa: E402
from gateway.sandbox.ibkr.seed import SUB_ACCOUNTS  # noqa: E402
from gateway.sandbox.venue import SandboxRunner  # noqa: E402
from tests.harness import GraphQLClient, SandboxControl, served_process  # noqa: E402

DEMO = {"slow_window": 0.1, "global_limit": 100}


def _config(folder: Path, runner: SandboxRunner) -> str:
    venue = runner.venue("ibkr")
    options = ", ".join(f"{k} = {v!r}".replace("'", '"') for k, v in venue.options.items())
    path = folder / "gateway.toml"
    path.write_text(f"""
profile = "development"

[connections.ibkr]
broker = "ibkr"
base_url = "{runner.base_urls['ibkr']}"
timeout = 10.0
options = {{ {options} }}
""")
    return str(path)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _timed(gql: GraphQLClient, name: str, variables: dict[str, Any] | None = None) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    body = await gql.run(name, variables, timeout=300)
    return time.perf_counter() - started, body


async def dashboards(rounds: int, sizes: list[int]) -> None:
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast(), venue_options={"ibkr": {"pacing": DEMO}})
    await runner.start()
    control = SandboxControl(runner.base_urls["ibkr"])
    try:
        with tempfile.TemporaryDirectory() as folder:
            async with served_process("--config", _config(Path(folder), runner)) as (url, _):
                gql = GraphQLClient(url)
                await gql.run("Dashboard")  # cold session and reference data out of the way
                print("| concurrent Dashboards | venue requests per round | × one alone | p50 | p99 | × p50 alone |"
                      " errors |")
                print("|---|---|---|---|---|---|---|")
                base: tuple[float, float] | None = None
                for n in sizes:
                    requests: list[int] = []
                    latencies: list[float] = []
                    errors = 0
                    for _ in range(rounds):
                        await asyncio.sleep(0.5)  # past every default maxAge
                        await control.reset()
                        results = await asyncio.gather(*(_timed(gql, "Dashboard") for _ in range(n)))
                        requests.append(await control.total())
                        latencies.extend(t for t, _ in results)
                        errors += sum(len(b.get("errors") or []) for _, b in results)
                    req, p50, p99 = statistics.median(requests), _pct(latencies, 0.5), _pct(latencies, 0.99)
                    if base is None:
                        base = (req, p50)
                    print(f"| {n} | {req:.0f} | {req / base[0]:.2f} | {p50 * 1000:.0f} ms | {p99 * 1000:.0f} ms | "
                          f"{p50 / base[1]:.2f} | {errors} |")
    finally:
        await runner.stop()


async def writes(rounds: int, dashboards_per_round: int, period: float) -> None:
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast())  # documented pacing
    await runner.start()
    control = SandboxControl(runner.base_urls["ibkr"])
    try:
        with tempfile.TemporaryDirectory() as folder:
            async with served_process("--config", _config(Path(folder), runner)) as (url, _):
                gql = GraphQLClient(url)
                latencies: list[float] = []
                outcomes: dict[str, int] = {}
                dashboard_times: list[float] = []
                busy = 0
                for r in range(rounds):
                    # a fresh brokerage session: selection, pre-flight and the first snapshot all cold
                    await control._call("POST", "/ibkr/session", {"authenticated": False})
                    await control._call("POST", "/ibkr/session", {"authenticated": True})
                    await asyncio.sleep(6.0)  # every snapshot older than its maxAge, the penalty windows clear
                    running = asyncio.gather(*(_timed(gql, "Dashboard") for _ in range(dashboards_per_round)))
                    await asyncio.sleep(1.0)
                    k = 0
                    while not running.done():
                        account = SUB_ACCOUNTS[(r * 7 + k) % len(SUB_ACCOUNTS)]
                        k += 1
                        took, body = await _timed(gql, "PlaceOrder", {"input": {
                            "accountId": encode(AccountKey("ibkr", account)),
                            "instrument": {"brokerInstrumentId": "265598"}, "side": "BUY", "type": "LIMIT",
                            "quantity": "1", "limitPrice": "226.00"}})
                        kind = (body.get("data") or {}).get("placeOrder", {}).get("__typename", "error")
                        outcomes[kind] = outcomes.get(kind, 0) + 1
                        latencies.append(took)
                        await asyncio.sleep(max(period - took, 0.0))
                    for took, body in await running:
                        dashboard_times.append(took)
                        busy += sum(1 for e in body.get("errors") or [] if e["extensions"]["code"] == "BROKER_BUSY")
                pacing = await control._call("GET", "/ibkr/pacing")
                print(f"writes: {len(latencies)}  outcomes: {outcomes}")
                print(f"write latency p50 {_pct(latencies, 0.5) * 1000:.0f} ms, p99 {_pct(latencies, 0.99) * 1000:.0f} ms,"
                      f" max {max(latencies) * 1000:.0f} ms")
                print(f"Dashboards: {len(dashboard_times)}, each {statistics.median(dashboard_times):.1f} s (median), "
                      f"BROKER_BUSY entries: {busy}; venue pacing violations: {pacing['violations']}")
    finally:
        await runner.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    d = sub.add_parser("dashboards")
    d.add_argument("--rounds", type=int, default=5)
    d.add_argument("--sizes", default="1,10,50")
    w = sub.add_parser("writes")
    w.add_argument("--rounds", type=int, default=2)
    w.add_argument("--dashboards", type=int, default=5)
    w.add_argument("--period", type=float, default=2.0, help="seconds between placements")
    args = parser.parse_args()
    if args.what == "dashboards":
        asyncio.run(dashboards(args.rounds, [int(n) for n in args.sizes.split(",")]))
    else:
        asyncio.run(writes(args.rounds, args.dashboards, args.period))


if __name__ == "__main__":
    main()
