"""Work for a client that has gone is stopped, never left queued or running for nobody.

:class:`CancelOnDisconnect` runs each plain HTTP request to ``/graphql`` in a task of its own and,
once the request's body has arrived, listens for the client's disconnect: when the client goes away
before the response is complete, the task is cancelled. The cancellation reaches everything the
operation waits for: its places in the broker sessions' queues are given up, identical reads it
shared are cancelled when nobody else waits for them (:mod:`.brokers.snapshots`), requests in flight
are abandoned. (WebSocket operations end with their socket or their ``complete`` message; the SSE
endpoint listens for disconnects itself.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CancelOnDisconnect"]


class CancelOnDisconnect:
    """ASGI middleware for ``path`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or scope.get("path") != self.path:
            return self.app(scope, receive, send)  # as it is: no frame of this middleware's for a WebSocket's life
        return self._request(scope, receive, send)

    async def _request(self, scope: Scope, receive: Receive, send: Send) -> None:
        body_read = asyncio.Event()
        finished = False

        async def receive_body() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_read.set()
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        work = asyncio.ensure_future(self.app(scope, receive_body, send_tracked))

        async def gone() -> None:
            await body_read.wait()
            while True:
                message = await receive()  # after the body, the next message says the client left
                if message["type"] == "http.disconnect":
                    if not finished:
                        work.cancel()
                    return

        listener = asyncio.ensure_future(gone())
        try:
            await asyncio.wait({work, listener}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():  # the client went away and the work was cancelled: nobody to answer
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                return
            await work
        finally:
            listener.cancel()
            if not work.done():
                work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
