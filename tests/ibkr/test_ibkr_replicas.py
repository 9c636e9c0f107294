"""Issue #9: two ``broker-gateway serve`` processes on one IBKR login. With a real redis-server they
share the session's critical section and selected account (and its pacing and confirmations): a
thousand mixed concurrent order reads and placements over the twenty sub-accounts show no order under a
wrong account and miss none an account holds, and a question asked on one replica is answered on the
other. Without Redis the second process is refused at start."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path
from typing import Any

from ibkr_support import SUBS

from gateway.domain.keys import AccountKey
from gateway.graphql.ids import encode
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner
from tests.harness import GraphQLClient, SandboxControl, free_port, served_process

APPLE = "265598"
WORKING = ("pending_new", "working", "partially_filled")


def _config(path: Path, base_url: str, options: dict[str, Any], redis_url: str | None) -> str:
    opts = ", ".join(f"{k} = {v!r}".replace("'", '"') for k, v in {**options, "orders_repoll_delay": 0.05}.items())
    text = f"""
profile = "development"

[connections.ibkr]
broker = "ibkr"
base_url = "{base_url}"
timeout = 5.0
options = {{ {opts} }}
"""
    if redis_url:
        text += f"""
[events]
backend = "redis"
redis_url = "{redis_url}"
stream_key = "test:ibkr-replicas:{path.parent.name}"
"""
    path.write_text(text)
    return str(path)


def _resting(account: str, quantity: int) -> dict[str, Any]:
    """A buy limit 1 % under AAPL: no question, and it never fills (static prices)."""
    return {"input": {"accountId": encode(AccountKey("ibkr", account)), "instrument": {"brokerInstrumentId": APPLE},
                      "side": "BUY", "type": "LIMIT", "quantity": str(quantity), "limitPrice": "226.00"}}


async def test_two_replicas_on_one_login_share_the_session_through_redis(tmp_path: Path, redis_url: str) -> None:
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast(), venue_options={"ibkr": {"pacing": {"enabled": False}}})
    urls = await runner.start()
    control = SandboxControl(urls["ibkr"])
    config = _config(tmp_path / "replica.toml", urls["ibkr"], runner.venue("ibkr").options, redis_url)
    try:
        async with served_process("--config", config) as (url_a, _), served_process("--config", config) as (url_b, _):
            replicas = [GraphQLClient(url_a), GraphQLClient(url_b)]
            # every sub-account holds at least one working order placed through either replica
            firsts = await asyncio.gather(*(replicas[i % 2].data("PlaceOrder", _resting(a, 1))
                                            for i, a in enumerate(SUBS)))
            assert all(f["placeOrder"]["__typename"] == "OrderPlaced" for f in firsts), firsts
            held: dict[str, set[str]] = {a: set() for a in SUBS}
            for order in (await control.state())["orders"]:
                if order["account"] in held and order["status"] in WORKING:
                    held[order["account"]].add(order["id"])

            rng = random.Random(9)
            ops = [("read", rng.choice(SUBS)) for _ in range(800)] + [("place", rng.choice(SUBS)) for _ in range(200)]
            rng.shuffle(ops)
            gate = asyncio.Semaphore(64)

            async def run(i: int, kind: str, account: str) -> tuple[str, str, dict[str, Any]]:
                async with gate:
                    client = replicas[i % 2]
                    if kind == "place":
                        return kind, account, await client.run("PlaceOrder", _resting(account, 2), timeout=60)
                    return kind, account, await client.run("AccountOrders", {
                        "id": encode(AccountKey("ibkr", account)), "first": 100, "maxAge": 0}, timeout=60)

            results = await asyncio.gather(*(run(i, kind, account) for i, (kind, account) in enumerate(ops)))
            wrong = missing = 0
            for kind, account, body in results:
                assert not body.get("errors"), body["errors"]
                if kind == "place":
                    assert body["data"]["placeOrder"]["__typename"] == "OrderPlaced", body
                    continue
                nodes = body["data"]["account"]["orders"]["nodes"]
                wrong += sum(1 for n in nodes if n["account"]["accountNumber"] != account)
                missing += len(held[account] - {n["brokerOrderId"] for n in nodes})
            assert (wrong, missing) == (0, 0)
            wire = [o for o in (await control.state())["orders"] if o["account"] in held]
            assert sum(1 for o in wire if o["quantity"] == "2") == 200  # every placement once

            # a question asked on one replica, answered on the other
            asked = (await replicas[0].data("PlaceOrder", {"input": {
                **_resting(SUBS[7], 3)["input"], "limitPrice": "200.00"}}))["placeOrder"]  # 12 % off: o163
            assert asked["__typename"] == "ConfirmationRequired" and asked["messageIds"] == ["o163"], asked
            placed = (await replicas[1].data("ConfirmOrder", {"input": {
                "confirmationId": asked["confirmationId"], "accept": True}}))["confirmOrder"]
            assert placed["__typename"] == "OrderPlaced", placed
            again = (await replicas[0].data("ConfirmOrder", {"input": {
                "confirmationId": asked["confirmationId"], "accept": True}}))["confirmOrder"]
            assert again["__typename"] == "OrderPlaced" and again["order"]["id"] == placed["order"]["id"]
            coid = placed["order"]["clientOrderId"]
            assert [o["client_order_id"] for o in (await control.state())["orders"]].count(coid) == 1
    finally:
        await runner.stop()


async def test_a_second_replica_without_redis_is_refused_at_start(tmp_path: Path) -> None:
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast(), venue_options={"ibkr": {"pacing": {"enabled": False}}})
    urls = await runner.start()
    config = _config(tmp_path / "alone.toml", urls["ibkr"], runner.venue("ibkr").options, None)
    try:
        async with served_process("--config", config) as (url, _):
            second = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "serve", "--config", config, "--port", str(free_port()),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(second.communicate(), 60)
            assert second.returncode == 1
            # one line says why (the development profile's warning about anonymous access may precede it)
            lines = [line for line in out.decode().strip().splitlines() if " WARNING " not in line]
            assert len(lines) == 1 and "another broker-gateway process serves this IBKR login" in lines[0], lines
            assert (await GraphQLClient(url).data("Dashboard", {"positionsFirst": 1}))["connections"]  # the first serves on
    finally:
        await runner.stop()
