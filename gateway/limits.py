"""Bounded before parsing: request bodies and WebSocket messages are counted while they arrive.

* :class:`BodyLimitMiddleware` (ASGI) refuses an HTTP request whose ``Content-Length`` exceeds
  ``limits.max_body_bytes`` at once, and one without (chunked) as soon as the bytes received pass it:
  ``413`` with ``{"errors": [{"message": ..., "extensions": {"code": "PAYLOAD_TOO_LARGE", "limit": N}}]}``;
  the rest of the body is never parsed or kept (it is dropped for at most a quarter of a second, so that the
  client reads the answer before the connection closes). A WebSocket message larger than ``limits.max_ws_frame_bytes``
  closes the socket with code ``1009`` (message too big) before the application sees it; ``serve``
  also gives uvicorn the same ``ws_max_size``, which refuses the frame while it is being read.
* :func:`decode_json` is the JSON decoder of the GraphQL view (HTTP bodies, ``GET`` parameters and
  WebSocket messages): input nested deeper than Python's recursion limit, or an integer of more than
  4300 digits, is a ``json.JSONDecodeError`` (400 over HTTP, close ``4400`` over WebSocket), never a
  ``RecursionError`` or an unhandled ``ValueError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["PAYLOAD_TOO_LARGE", "BodyLimitMiddleware", "decode_json"]

#: ``extensions.code`` of a refused body
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"

#: after a 413, what the client still sends is dropped for at most this long / this much, then the
#: connection closes (see ``BodyLimitMiddleware._refuse``)
LINGER_SECONDS = 0.25
LINGER_BYTES = 16_000_000


class _TooLarge(Exception):
    """Raised from ``receive`` when the body passes the limit (caught by the middleware)."""


def _refusal(limit: int) -> bytes:
    return json.dumps({"errors": [{
        "message": f"the request body is larger than {limit} bytes (limits.max_body_bytes)",
        "extensions": {"code": PAYLOAD_TOO_LARGE, "limit": limit}}]}).encode()


class BodyLimitMiddleware:
    """See the module docstring. ``max_body_bytes``: HTTP request bodies; ``max_ws_bytes``: one
    WebSocket message (text or bytes)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_ws_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_ws_bytes = max_ws_bytes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # each kind goes straight to its coroutine: no frame of this dispatch for a connection's life
        if scope["type"] == "http":
            return self._http(scope, receive, send)
        if scope["type"] == "websocket":
            return self._websocket(scope, receive, send)
        return self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._refuse(send, limit, receive)
                    return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await self._refuse(send, limit, receive)

    @staticmethod
    async def _refuse(send: Send, limit: int, receive: Receive) -> None:
        """The 413, then a short lingering close: the answer is sent whole at once, then what the client
        still sends is read and dropped for at most ``LINGER_SECONDS`` / ``LINGER_BYTES`` before the
        connection closes. Closing with unread data would send a TCP reset, which can destroy the
        answer in the client's receive buffer before it is read (nginx's lingering close, the same)."""
        body = _refusal(limit)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body, "more_body": True})  # the client has it all
        dropped = 0
        with contextlib.suppress(TimeoutError, _TooLarge, OSError):
            async with asyncio.timeout(LINGER_SECONDS):
                while dropped < LINGER_BYTES:
                    message = await receive()
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        break
                    dropped += len(message.get("body", b""))
        await send({"type": "http.response.body", "body": b""})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_ws_bytes
        closed = False

        async def bounded() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive":
                size = len(message.get("text") or "") if message.get("text") is not None \
                    else len(message.get("bytes") or b"")
                if size > limit and not closed:
                    closed = True
                    await send({"type": "websocket.close", "code": 1009,
                                "reason": f"message larger than {limit} bytes"})
                    return {"type": "websocket.disconnect", "code": 1009}
            return message

        await self.app(scope, bounded, send)


def decode_json(data: str | bytes) -> Any:
    """``json.loads`` whose every failure is a ``json.JSONDecodeError`` (see the module docstring)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # e.g. an integer beyond Python's 4300-digit conversion limit
        raise json.JSONDecodeError(f"unsupported JSON value: {exc}", "", 0) from None
