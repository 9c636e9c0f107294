"""Benchmark: how fast the gateway refuses each oversized or expensive request of issue 10's table,
how fast a small query answers meanwhile, and how much the gateway's memory grows.

The lemon paper venue runs in this process, the gateway as a separate ``broker-gateway serve
--config`` process (production profile, one API key), the requests are sent over loopback sockets
(the tests' helpers: ``tests/test_bounded_requests.py``). Each row is sent ``--repeat`` times, each
time alongside a small query ``{ connections { name } }``.

    .venv/bin/python bench/limits.py --repeat 20

Not a test: it prints figures; bench/README.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from gateway.config import ApiKeyConfig  # noqa: E402
from gateway.sandbox.engine import EngineConfig  # noqa: E402
from gateway.sandbox.lemon import API_KEY  # noqa: E402
from gateway.sandbox.lemon.app import LemonSettings  # noqa: E402
from gateway.sandbox.venue import SandboxRunner  # noqa: E402
from tests import test_bounded_requests as rows  # noqa: E402
from tests.conftest import MAIN_KEY  # noqa: E402
from tests.harness import SandboxControl, free_port  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    venue = SandboxRunner(["lemon"], config=EngineConfig.fast(),
                          venue_options={"lemon": {"settings": LemonSettings(rate_limit=100_000)}})
    urls = await venue.start()
    config = Path(tempfile.mkdtemp()) / "bench.toml"
    config.write_text(f"""
[connections.lemon]
broker = "lemon"
base_url = "{urls['lemon']}"
credentials = {{ api_key = "{API_KEY}" }}
rate_limit = 10000

[[api_keys]]
name = "main"
sha256 = "{ApiKeyConfig.hash_key(MAIN_KEY)}"
connections = ["lemon"]
""")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                                                "--port", str(port), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        while "GraphQL endpoint:" not in (await proc.stdout.readline()).decode():
            pass
        served = rows.Served(f"http://127.0.0.1:{port}/graphql", proc.pid, port)
        async with httpx.AsyncClient() as http:
            rows.ACCOUNT["id"] = (await http.post(served.url, json={"query": "{ accounts { id } }"},
                                                  headers=rows.AUTH)).json()["data"]["accounts"][0]["id"]
        control = SandboxControl(urls["lemon"])
        upstream = await control.total()
        rss_before = served.rss_kib()
        print(f"{'request':<58} {'refusal p50':>11} {'max':>7} {'small p50':>10} {'max':>7}  answer")
        table = [(name, body) for name, body, _, _ in rows._rows()]
        table += [("50 MB body with a comment (Content-Length)", None), ("50 MB body with a comment (chunked)", None)]
        for name, body in table:
            refusals, smalls, answer = [], [], ""
            for _ in range(args.repeat):
                async with httpx.AsyncClient(timeout=30) as http:
                    await http.post(served.url, json={"query": rows.SMALL}, headers=rows.AUTH)
                    small = asyncio.ensure_future(rows._timed_post(http, served.url, json={"query": rows.SMALL}))
                    if body is not None:
                        took, response = await rows._graphql_refusal(served, body)
                        answer = f"{response.status_code} " + (response.json()["errors"][0].get("extensions", {}).get(
                            "code", "") if response.headers.get("content-type") == "application/json"
                            and response.status_code != 400 else response.text[:40])
                    else:
                        took, raw = await rows._raw_body_refusal(served, 50_000_000, chunked="chunked" in name)
                        answer = raw.split(b"\r\n", 1)[0].decode()
                    small_took, _ = await small
                refusals.append(took * 1000)
                smalls.append(small_took * 1000)
            print(f"{name[:58]:<58} {statistics.median(refusals):>9.1f}ms {max(refusals):>5.1f}ms "
                  f"{statistics.median(smalls):>8.1f}ms {max(smalls):>5.1f}ms  {answer}")
        print(f"RSS growth: {(served.rss_kib() - rss_before) / 1024:.1f} MiB; "
              f"upstream requests of the refused operations: {await control.total() - upstream}")
    finally:
        proc.terminate()
        await proc.wait()
        await venue.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
