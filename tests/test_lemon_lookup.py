"""lemon's look-up of an order by client order id (``idempotency``), which every reconciliation of a
lost placement and every repeated key runs: it reads ``GET orders`` (newest first) page by page and
stops at the page holding the order, so a recent order costs one page however busy the week was."""

from __future__ import annotations

import httpx

from gateway.domain.keys import AccountKey
from gateway.sandbox.lemon import API_KEY
from gateway.sandbox.venue import SandboxRunner
from tests.conftest import gateway_config, lemon_connections
from tests.faultproxy import FaultProxy
from tests.harness import SandboxControl, running_gateway

ORDERS = 130  # more than lemon's largest page (100): two pages


async def _orders_read(control: SandboxControl) -> int:
    stats = await control.stats()
    return sum(n for path, n in stats.items() if path.startswith("GET ") and path.rstrip("/").endswith("/orders"))


async def test_a_recent_order_is_found_on_the_first_page(own_lemon_venue: SandboxRunner) -> None:
    base = own_lemon_venue.base_urls["lemon"]
    async with httpx.AsyncClient(base_url=base.rstrip("/") + "/", headers={"Authorization": f"Bearer {API_KEY}"}) as raw:
        for i in range(ORDERS):  # the week's orders, oldest first
            response = await raw.post("orders", json={"isin": "DE0008232125", "side": "buy", "quantity": 1,
                                                      "venue": "xmun", "limit_price": 10000, "expires_at": "P0D",
                                                      "idempotency": f"busy-week-{i}"})
            assert response.status_code == 200, response.text
    control = SandboxControl(base)
    async with running_gateway(gateway_config(lemon_connections(base))) as gateway:
        adapter = gateway.registry.get("lemon")
        account = AccountKey("lemon", (await adapter.fetch_accounts())[0].key.account_number)

        async def look_up(cid: str) -> tuple[str | None, int]:
            before = await _orders_read(control)
            found = await adapter.fetch_order_by_client_id(account, cid)
            return (found.client_order_id if found else None), await _orders_read(control) - before

        assert await look_up(f"busy-week-{ORDERS - 1}") == (f"busy-week-{ORDERS - 1}", 1)
        assert await look_up("busy-week-0") == ("busy-week-0", 2)  # the oldest: on the second page
        assert await look_up("never-used") == (None, 2)  # not found: every page was read

        # the same look-ups through a reverse proxy (the fault proxy, no faults): lemon's ``next`` link
        # names the host the request named, so the second page is read through the proxy too
        proxy = FaultProxy(base)
        await proxy.start()
        try:
            async with running_gateway(gateway_config(lemon_connections(proxy.url))) as proxied:
                adapter = proxied.registry.get("lemon")
                found = await adapter.fetch_order_by_client_id(account, "busy-week-0")
                assert found is not None and found.client_order_id == "busy-week-0"
                assert sum(1 for s in proxy.seen if s.startswith("GET ") and s.rstrip("/").endswith("/orders")) == 2
        finally:
            await proxy.stop()
