"""Two gateway processes sharing a real Redis: events cross replicas, one replica polls an account,
and a resume works on either."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import httpx

from tests.conftest import FAST_EVENTS, MAIN_KEY, gateway_config, lemon_config_file, lemon_connections
from tests.harness import GraphQLClient, SandboxControl, Subscription, running_gateway, served_process


def _config(tmp_path: Path, lemon_url: str, redis_url: str) -> Path:
    return lemon_config_file(tmp_path / "replica.toml", lemon_url, head='profile = "development"', keys=None, more=f"""
timeout = 3.0

[events]
backend = "redis"
redis_url = "{redis_url}"
stream_key = "test:events:{tmp_path.name}"
fast_interval = 0.2
slow_interval = 0.4
lease_ttl = 2.0
linger = 0.2
""")


async def _polls(url: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(url.replace("/graphql", "/metrics"))).text
    match = re.search(r'gateway_upstream_polls_total\{connection="lemon"\} ([0-9.]+)', text)
    return float(match.group(1)) if match else 0.0


async def test_two_replicas_share_events_and_only_one_polls(tmp_path: Path, lemon_url: str, redis_url: str,
                                                           lemon_control: SandboxControl) -> None:
    config = str(_config(tmp_path, lemon_url, redis_url))
    async with served_process("--config", config) as (url_a, _), served_process("--config", config) as (url_b, _):
        a = GraphQLClient(url_a)
        account = (await a.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1}))["connections"][0]["accounts"][0]["id"]
        async with Subscription(url_a, "OrderStatusChanged", {"accountId": account}, None) as on_a, \
                Subscription(url_b, "OrderStatusChanged", {"accountId": account}, None) as on_b:
            await asyncio.sleep(1.0)  # both replicas want the account; one takes the lease and its baseline
            before = (await _polls(url_a), await _polls(url_b))
            await lemon_control.reset()
            await asyncio.sleep(2.0)
            after = (await _polls(url_a), await _polls(url_b))
            grew = [after[i] > before[i] for i in range(2)]
            assert grew.count(True) == 1, (before, after)  # exactly one replica polls the account
            upstream = (await lemon_control.stats()).get("GET /v1/orders", 0)
            assert upstream <= max(after[0] - before[0], after[1] - before[1]) + 1

            placed = (await a.data("PlaceOrder", {"input": {
                "accountId": account, "instrument": {"isin": "DE0008232125"}, "side": "BUY", "type": "MARKET",
                "quantity": "1"}}))["placeOrder"]
            order_id = placed["order"]["id"]
            seen_b = await on_b.until(lambda e: e["order"]["id"] == order_id and e["status"] == "FILLED")
            seen_a = await on_a.until(lambda e: e["order"]["id"] == order_id and e["status"] == "FILLED")
            ids_b = [e["eventId"] for e in seen_b if e["order"]["id"] == order_id]
            ids_a = [e["eventId"] for e in seen_a if e["order"]["id"] == order_id]
            assert ids_a == ids_b and len(ids_b) == len(set(ids_b))  # the same events, once each

        # resume on replica A from an id seen on replica B
        mark = ids_b[0]
        async with Subscription(url_a, "OrderStatusChanged", {"accountId": account, "after": mark}, None) as resumed:
            replay = [(await resumed.next())["orderStatusChanged"]["eventId"] for _ in ids_b[1:]]
        assert replay == ids_b[1:]


async def test_idempotency_keys_are_shared_between_replicas(lemon_url: str, redis_url: str,
                                                             lemon_control: SandboxControl) -> None:
    """With the Redis backend the second replica answers from the shared store: lemon never even sees
    a second POST for the key."""
    config = gateway_config(lemon_connections(lemon_url), events={**FAST_EVENTS, "backend": "redis",
                                                                  "redis_url": redis_url,
                                                                  "stream_key": "test:idempotency"})
    async with running_gateway(config) as a, running_gateway(config) as b:
        key = f"shared-{uuid.uuid4()}"
        account = (await a.client(MAIN_KEY).data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1}))[
            "connections"][0]["accounts"][0]["id"]
        order = {"accountId": account, "instrument": {"isin": "DE0008232125"}, "side": "BUY", "type": "LIMIT",
                 "limitPrice": "1.00", "quantity": "1", "idempotencyKey": key}
        await lemon_control.reset()
        first = (await a.client(MAIN_KEY).data("PlaceOrder", {"input": order}))["placeOrder"]
        second = (await b.client(MAIN_KEY).data("PlaceOrder", {"input": order}))["placeOrder"]
        conflict = (await b.client(MAIN_KEY).data("PlaceOrder", {"input": {**order, "quantity": "2"}}))["placeOrder"]
        assert first["__typename"] == second["__typename"] == "OrderPlaced"
        assert first["order"]["id"] == second["order"]["id"]
        assert conflict["__typename"] == "InvalidInput" and conflict["code"] == "IDEMPOTENCY_CONFLICT"
        assert (await lemon_control.stats())["POST /v1/orders"] == 1
        await a.client(MAIN_KEY).data("CancelOrder", {"input": {"orderId": first["order"]["id"]}})
