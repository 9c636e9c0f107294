"""After connection_ack, the subscription fan-out writes with the server's own send: the accept and
the ack pass every middleware (request id, transport guard), later messages pass none of them."""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.server_send import ServerSend
from tests.conftest import FAST_EVENTS, MAIN_KEY, gateway_config, lemon_connections
from tests.harness import RunningGateway, Subscription
from tests.harness import first_account as _account
from tests.harness import place_market_buy as _place

SEEN: list[str] = []


class Watch:
    """A middleware just inside ServerSend (where any of the gateway's own would be): records the
    WebSocket messages sent through it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watched(message: Message) -> None:
            if message["type"].startswith("websocket."):
                SEEN.append(message.get("text") or message["type"])
            await send(message)

        await self.app(scope, receive, watched)


async def test_the_ack_passes_the_middlewares_and_the_events_after_it_do_not(lemon_url: str) -> None:
    config = gateway_config(lemon_connections(lemon_url), events=FAST_EVENTS)
    gateway = RunningGateway(config)
    assert gateway.app.user_middleware[0].cls is ServerSend
    gateway.app.user_middleware.insert(1, Middleware(Watch))  # inside ServerSend (index 0: outermost)
    await gateway.start()
    try:
        client = gateway.client(MAIN_KEY)
        account = await _account(client)
        SEEN.clear()
        async with Subscription(gateway.url, "OrderStatusChanged", {"accountId": account}, MAIN_KEY) as sub:
            placed = await _place(client, account)
            events: list[dict[str, Any]] = await sub.until(lambda e: e["order"]["id"] == placed["id"]
                                                           and e["status"] == "FILLED")
        assert events
        assert SEEN[0] == "websocket.accept" and '"connection_ack"' in SEEN[1]
        assert not any('"next"' in m for m in SEEN), SEEN  # the events went around the layers
    finally:
        await gateway.stop()
