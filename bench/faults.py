"""Benchmark: exactly-once orders under network faults (issue #11).

1 000 logical orders over the four brokers (250 each by default), each with an ``idempotencyKey``,
sent by clients that retry up to 3 times on ``OrderOutcomeUnknown``, ``BrokerUnavailable`` or a
transport error, through a fault proxy (``tests/faultproxy.py``) in front of each venue that injects
on 10 % of requests each a timeout, a reset after forwarding and a non-JSON answer (``--extra`` adds
5 % each of resets before forwarding and 502s after forwarding). Afterwards it counts what each venue
holds by client order id (``tests/placement_drive.py``):

* duplicated: logical orders with more than one venue order (extra: how many more);
* lost: venue orders whose final answer gives the client no handle on them;
* not placed, live: final answers ``BrokerUnavailable`` / ``OrderRejected`` for an order the venue holds;
* unresolved: final answers ``OrderOutcomeUnknown`` (honest; asked again without faults, each one is
  then checked to come back as its one order).

Everything on loopback: the venues, the proxies and the gateway (uvicorn) in this process.

    .venv/bin/python bench/faults.py
    .venv/bin/python bench/faults.py --per-broker 250 --extra

Not a test: it prints figures; bench/README.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.config import GatewayConfig  # noqa: E402
from gateway.sandbox.engine import EngineConfig  # noqa: E402
from gateway.sandbox.venue import SandboxRunner  # noqa: E402
from tests.conftest import TEST_VENUE  # noqa: E402
from tests.faultproxy import FaultProxy  # noqa: E402
from tests.harness import SandboxControl, running_gateway  # noqa: E402
from tests.placement_drive import (  # noqa: E402
    BROKERS,
    account_ids,
    connection,
    order_variables,
    place_logical,
    run_logical,
    tally,
)


async def main(per_broker: int, extra: bool, upstream_timeout: float, seed: int, brokers: tuple[str, ...]) -> None:
    rates = {"timeout": 0.1, "reset_after": 0.1, "non_json": 0.1}
    if extra:
        rates.update({"reset_before": 0.05, "error_5xx": 0.05})
    runner = SandboxRunner(list(brokers), config=EngineConfig.fast(),
                           venue_options={**TEST_VENUE, "ibkr": {"pacing": {"enabled": False}}})
    await runner.start()
    proxies = {b: FaultProxy(runner.base_urls[b], dict(rates), seed=seed + BROKERS.index(b), hold=30.0)
               for b in brokers}
    for proxy in proxies.values():
        await proxy.start()
    connections = {b: connection(runner, b, proxies[b].url, timeout=upstream_timeout) for b in brokers}
    config = GatewayConfig.model_validate({"profile": "development", "connections": connections})
    print(f"faults per request: {rates}; {per_broker} logical orders per broker; timeout {upstream_timeout:g} s")
    print("| broker | logical orders | venue orders | duplicated | extra | lost | not placed, live | unresolved "
          "| after asking again | faults injected | time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    totals = [0, 0, 0, 0, 0, 0, 0]
    try:
        async with running_gateway(config) as gateway:
            client = gateway.client()
            for broker in brokers:
                proxy = proxies[broker]
                account = await account_ids(client, broker)
                started = time.monotonic()
                logicals = await run_logical([client], broker, account, per_broker, concurrency=10)
                took = time.monotonic() - started
                control = SandboxControl(runner.base_urls[broker])
                counted = await tally(control, broker, logicals)
                saved, proxy.rates = proxy.rates, {}
                unresolved = [lg for lg in logicals if lg.final["__typename"] != "OrderPlaced"]
                await asyncio.gather(*(place_logical([client], order_variables(broker, account, lg.key), lg, 0)
                                       for lg in unresolved))
                proxy.rates = saved
                settled = await tally(control, broker, logicals)
                after = "all placed once" if settled.finals == {"OrderPlaced": per_broker} and settled.clean and \
                    settled.venue_orders == per_broker else f"{dict(settled.finals)} {settled.venue_orders} orders"
                print(f"| {broker} | {counted.logical} | {counted.venue_orders} | {counted.duplicated} | {counted.extra} "
                      f"| {counted.lost} | {counted.not_placed_live} | {counted.unresolved} | {after} "
                      f"| {sum(proxy.counts.values())} | {took:.1f} s |")
                for problem in counted.problems[:5]:
                    print("  ", problem)
                for lg in [lg for lg in unresolved if lg.final["__typename"] != "OrderPlaced"][:3]:
                    print("   asked again:", lg.key, lg.final)
                for i, value in enumerate((counted.logical, counted.venue_orders, counted.duplicated, counted.extra,
                                           counted.lost, counted.not_placed_live, counted.unresolved)):
                    totals[i] += value
    finally:
        for proxy in proxies.values():
            await proxy.stop()
        await runner.stop()
    print(f"| all | {totals[0]} | {totals[1]} | {totals[2]} | {totals[3]} | {totals[4]} | {totals[5]} | {totals[6]} "
          "| | | |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-broker", type=int, default=250)
    parser.add_argument("--extra", action="store_true", help="also 5 %% resets before forwarding and 502s")
    parser.add_argument("--timeout", type=float, default=1.0, help="each connection's timeout, seconds")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--brokers", default=",".join(BROKERS), help="comma-separated, of " + ",".join(BROKERS))
    args = parser.parse_args()
    asyncio.run(main(args.per_broker, args.extra, args.timeout, args.seed, tuple(args.brokers.split(","))))
