"""Benchmark: the gateway's CPU per query for reads of the IBKR paper venue (pacing off).

* ``positions``: one document reading the positions (first 50) of the 20 IBKR sub-accounts through 20
  aliases, ``maxAge: 0`` (every query reads the venue);
* ``dashboard``: ``queries/Dashboard.graphql`` with ``maxAge: 0``.

The gateway runs as a separate ``broker-gateway serve --config`` process; its CPU is read from
``/proc/<pid>/stat`` (utime + stime) around N sequential queries after two warm-up ones, so the
figure is the gateway's alone (not the venue's or the client's).

    .venv/bin/python bench/queries.py --queries 20
    .venv/bin/python bench/queries.py --compare /path/to/other/checkout --rounds 8 --queries 20
    .venv/bin/python bench/queries.py --queries 60 --spy /tmp/positions.raw   # needs `pip install py-spy`

``--compare DIR`` runs a second gateway from another checkout's ``gateway`` package (each gateway on
its own paper venue) and measures the two in alternating batches of N queries, ``--rounds`` times,
first one side then the other: on a shared machine the load changes from minute to minute, and
alternating batches lets both sides meet the same load. It prints each side's median and the median
of the per-round ratios (this checkout / DIR).

Not a test: it prints figures; bench/README.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sessions import _config  # noqa: E402
from subscribers import _cpu_s  # noqa: E402

from gateway.domain.keys import AccountKey  # noqa: E402
from gateway.graphql.ids import encode  # noqa: E402
from gateway.sandbox.engine import EngineConfig  # noqa: E402
from gateway.sandbox.ibkr.seed import SUB_ACCOUNTS  # noqa: E402
from gateway.sandbox.venue import SandboxRunner  # noqa: E402
from tests.harness import GraphQLClient, document, served_process  # noqa: E402


def positions_document() -> str:
    fields = ("positions(first: 50, maxAge: 0) { nodes { id quantity instrument { symbol isin brokerInstrumentId } "
              "averagePrice { amount currency } marketValue { amount currency } } pageInfo { hasNextPage } }")
    aliases = [f'a{n}: account(id: "{encode(AccountKey("ibkr", acct))}") {{ accountNumber {fields} }}'
               for n, acct in enumerate(list(SUB_ACCOUNTS)[:20])]
    return "query TwentySubs { " + " ".join(aliases) + " }"


async def measure(gql: GraphQLClient, pid: int, query: str, variables: dict | None, n: int) -> dict[str, float]:
    for _ in range(2):
        body = (await gql.post(query, variables, timeout=120)).json()
        assert not body.get("errors"), body["errors"][:2]
    cpu = _cpu_s(pid)
    started = time.perf_counter()
    for _ in range(n):
        body = (await gql.post(query, variables, timeout=120)).json()
        assert not body.get("errors"), body["errors"][:2]
    wall = time.perf_counter() - started
    return {"gateway_cpu_ms_per_query": round((_cpu_s(pid) - cpu) / n * 1000, 1),
            "wall_ms_per_query": round(wall / n * 1000, 1)}


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


def _venue() -> SandboxRunner:
    """The IBKR paper venue with pacing off."""
    return SandboxRunner(["ibkr"], config=EngineConfig.fast(), venue_options={"ibkr": {"pacing": {"enabled": False}}})


async def main(args: argparse.Namespace) -> None:
    runner = _venue()
    await runner.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            async with served_process("--config", _config(Path(folder), runner)) as (url, _):
                pid = _gateway_pid(int(url.split(":")[2].split("/")[0]))
                gql = GraphQLClient(url)
                spy = _spy(pid, args.spy) if args.spy else None
                positions = await measure(gql, pid, positions_document(), None, args.queries)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
                    spy.wait()
                result = {
                    "positions_20_subs": positions,
                    "dashboard": await measure(gql, pid, document("Dashboard"), {"maxAge": 0}, args.queries),
                }
                print(json.dumps(result, indent=2))
    finally:
        await runner.stop()


def _spy(pid: int, path: str) -> subprocess.Popen[bytes]:
    """py-spy recording ``pid`` into ``path`` (``--format raw``: one stack a line with its count);
    started a second before the measured queries so that it samples them all."""
    spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--format",
                            "raw", "--rate", "250", "--output", path])
    time.sleep(1.0)
    return spy


async def compare(args: argparse.Namespace) -> None:
    """This checkout's gateway against ``args.compare``'s, in alternating batches (module docstring)."""
    runners = [_venue(), _venue()]
    for runner in runners:
        await runner.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            async with contextlib.AsyncExitStack() as stack:
                sides: dict[str, tuple[GraphQLClient, int]] = {}
                for name, runner, cwd in (("this", runners[0], str(ROOT)), ("other", runners[1], args.compare)):
                    sub = Path(folder) / name
                    sub.mkdir()
                    url, _ = await stack.enter_async_context(served_process("--config", _config(sub, runner), cwd=cwd))
                    sides[name] = (GraphQLClient(url), _gateway_pid(int(url.split(":")[2].split("/")[0])))
                result = {what: await _alternate(sides, query, variables, args)
                          for what, (query, variables) in (("positions_20_subs", (positions_document(), None)),
                                                           ("dashboard", (document("Dashboard"), {"maxAge": 0})))}
        print(json.dumps({"this": str(ROOT), "other": args.compare, "queries_per_batch": args.queries, **result},
                         indent=2))
    finally:
        for runner in runners:
            await runner.stop()


async def _alternate(sides: dict[str, tuple[GraphQLClient, int]], query: str, variables: dict | None,
                     args: argparse.Namespace) -> dict[str, object]:
    cpu: dict[str, list[float]] = {"this": [], "other": []}
    for round_ in range(args.rounds):
        for name in ("this", "other") if round_ % 2 == 0 else ("other", "this"):
            gql, pid = sides[name]
            cpu[name].append((await measure(gql, pid, query, variables, args.queries))["gateway_cpu_ms_per_query"])
    ratios = [a / b for a, b in zip(cpu["this"], cpu["other"], strict=True)]
    return {"this_ms": cpu["this"], "other_ms": cpu["other"], "this_median_ms": statistics.median(cpu["this"]),
            "other_median_ms": statistics.median(cpu["other"]), "ratio_median": round(statistics.median(ratios), 3)}


async def profile(n: int, sort: str) -> None:
    """The positions document with the gateway in this process under cProfile (the venue runs here
    too: its frames are in the profile as ``gateway/sandbox``, left out of the listing): the top
    frames by ``sort`` (``cumulative`` or ``tottime``). The gateway settles its heap as ``serve`` does."""
    import cProfile
    import pstats

    from gateway.config import GatewayConfig
    from tests.harness import running_gateway

    runner = _venue()
    await runner.start()
    try:
        venue = runner.venue("ibkr")
        options = dict(venue.options)
        options.pop("verify_tls", None)
        config = GatewayConfig.model_validate({"profile": "development", "connections": {"ibkr": {
            "broker": "ibkr", "base_url": runner.base_urls["ibkr"], "credentials": dict(venue.credentials),
            "options": options, "verify_tls": False, "timeout": 10.0}}})
        async with running_gateway(config, settle_heap=True) as gateway:
            gql = gateway.client()
            query = positions_document()
            for _ in range(2):
                await gql.post(query, timeout=120)
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(n):
                await gql.post(query, timeout=120)
            prof.disable()
            pstats.Stats(prof).sort_stats(sort).print_stats(
                r"gateway/(?!sandbox)|strawberry|graphql/|aiohttp|tenacity|json|prometheus|purgatory", 40)
    finally:
        await runner.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="print the positions document's profile instead")
    parser.add_argument("--sort", default="cumulative", choices=["cumulative", "tottime"], help="--profile's order")
    parser.add_argument("--spy", metavar="FILE",
                        help="record the served gateway with py-spy (raw format) during the positions queries")
    parser.add_argument("--compare", metavar="DIR", help="another checkout whose gateway to measure in alternating batches")
    parser.add_argument("--rounds", type=int, default=6, help="batches per side with --compare")
    args = parser.parse_args()
    if args.compare:
        args.compare = str(Path(args.compare).resolve())
    asyncio.run(profile(args.queries, args.sort) if args.profile else compare(args) if args.compare else main(args))
