"""The server's own ``send`` of a WebSocket connection, for messages no middleware needs to see.

The gateway's middlewares act on a WebSocket's handshake (:mod:`.request_id` adds ``X-Request-Id`` to
``websocket.accept``) and on its acknowledgement (:mod:`.http_guard` counts a socket until its
``connection_ack``); after that every layer passes each message on unchanged, at the cost of a
coroutine call per layer per message: with thousands of subscribers, a tenth of the gateway's CPU
per event. :class:`ServerSend`, the outermost of the gateway's own middlewares, keeps the ``send`` it
is given in the connection's scope (:data:`SCOPE_KEY`); the subscription fan-out writes its messages
with it once the connection is acknowledged (:mod:`.events.fanout`), everything before (the accept,
the ``connection_ack``, a refusal) goes through every layer. A middleware added inside it that must
see a WebSocket's messages after the acknowledgement must not be bypassed so: it then removes the key
from the scope.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["SCOPE_KEY", "ServerSend"]

#: the scope key holding the server's ``send`` of a WebSocket connection
SCOPE_KEY = "gateway.server_send"


class ServerSend:
    """ASGI middleware: a WebSocket scope gets :data:`SCOPE_KEY` (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SCOPE_KEY] = send
        await self.app(scope, receive, send)
