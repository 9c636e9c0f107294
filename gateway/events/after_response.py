"""Deliveries that wait for the answer of the request that caused them.

A mutation publishes the status change of the order it wrote at once: the bus holds the event (with
its id, for resumes and for other replicas) before the mutation answers. Handing it to this process's
subscribers, though, starts their executions and socket writes, and on a busy gateway those would
run on the event loop between the mutation's result and its response. So inside an HTTP request
:func:`after_response` keeps the hand-over until the response's last body chunk has been sent
(:class:`AfterResponse`, an ASGI middleware), and runs it then; outside a request (watchers, the
Redis reader, WebSocket operations) it runs at once. A request whose answer is never sent (the
client went away, an error) still hands its events over when it ends: an event is never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AfterResponse", "after_response"]

log = logging.getLogger(__name__)

#: the current HTTP request's hand-overs waiting for its response (``None`` outside a request)
_pending: ContextVar[list[Callable[[], None]] | None] = ContextVar("after_response", default=None)


def after_response(hand_over: Callable[[], None]) -> None:
    """Run ``hand_over`` (quick, synchronous: it queues work, never does it) once the current HTTP
    request's response has been sent, or now outside a request."""
    pending = _pending.get()
    if pending is None:
        hand_over()
    else:
        pending.append(hand_over)


def _run(pending: list[Callable[[], None]]) -> None:
    while pending:
        hand_over = pending.pop(0)
        try:
            hand_over()
        except Exception:  # one subscriber's hand-over must not cost the others theirs
            log.exception("handing an event over after the response failed")


class AfterResponse:
    """ASGI middleware: an HTTP request's :func:`after_response` hand-overs run after its response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)  # as it is: no frame of this middleware's for a WebSocket's life
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        pending: list[Callable[[], None]] = []
        token = _pending.set(pending)

        async def sending(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                _run(pending)

        try:
            await self.app(scope, receive, sending)
        finally:
            _pending.reset(token)
            _run(pending)  # an answer never sent still hands its events over
