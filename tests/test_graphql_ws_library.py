"""The graphql-ws JavaScript library (what GraphiQL and most frontends use) subscribes to the gateway."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from tests.conftest import FAST_EVENTS, MAIN_KEY, gateway_config, lemon_connections
from tests.harness import QUERIES, running_gateway

JS = Path(__file__).resolve().parent / "js"


async def test_graphql_ws_client_sees_an_order_placed_elsewhere_go_to_filled(lemon_url: str) -> None:
    node = shutil.which("node")
    assert node and (JS / "node_modules" / "graphql-ws").is_dir(), "run the tests with `make test` (installs them)"
    async with running_gateway(gateway_config(lemon_connections(lemon_url), events=FAST_EVENTS)) as gateway:
        client = gateway.client(MAIN_KEY)
        account = (await client.data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1}))[
            "connections"][0]["accounts"][0]["id"]
        proc = await asyncio.create_subprocess_exec(
            node, str(JS / "subscribe.mjs"), gateway.url.replace("http://", "ws://"),
            str(QUERIES / "OrderStatusChanged.graphql"), json.dumps({"accountId": account}), MAIN_KEY,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=JS)
        try:
            assert proc.stdout is not None
            ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
            assert ready == {"ready": True}
            await asyncio.sleep(1.0)  # the subscription is registered and its watcher baselined
            placed = (await client.data("PlaceOrder", {"input": {
                "accountId": account, "instrument": {"isin": "DE0008232125"}, "side": "BUY", "type": "MARKET",
                "quantity": "1"}}))["placeOrder"]["order"]
            statuses = []
            async with asyncio.timeout(20):
                while "FILLED" not in statuses:
                    line = await proc.stdout.readline()
                    assert line, (await proc.stderr.read()).decode()  # type: ignore[union-attr]
                    result = json.loads(line)
                    assert "errors" not in result, result
                    event = result["data"]["orderStatusChanged"]
                    if event["order"]["id"] == placed["id"]:
                        statuses.append(event["status"])
            assert statuses[-1] == "FILLED"
        finally:
            proc.kill()
            await proc.wait()
