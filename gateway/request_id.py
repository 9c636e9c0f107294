"""A request id for every HTTP request and WebSocket connection, for logs and error answers.

:class:`RequestIdMiddleware` takes the caller's ``X-Request-Id`` when it is a plausible id (1-64
characters of ``[A-Za-z0-9._:-]``), else makes one (32 hex digits), keeps it in the context variable
:data:`request_id` for everything the request runs (resolvers, adapters, log records), and echoes it in
the ``X-Request-Id`` response header. A WebSocket connection keeps one id for its whole life.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEADER", "RequestIdMiddleware", "current_request_id", "request_id"]

HEADER = "x-request-id"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

#: the id of the request the current task serves (``None`` outside a request)
request_id: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)


def current_request_id() -> str | None:
    """The current request's id, or ``None`` outside a request."""
    return request_id.get()


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return text if _VALID.fullmatch(text) else None
    return None


class RequestIdMiddleware:
    """Sets :data:`request_id` per request (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = _incoming(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
