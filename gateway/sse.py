"""Subscriptions over Server-Sent Events (the graphql-sse "distinct connections" mode).

``POST /graphql/stream`` with a JSON body ``{query, variables, operationName, extensions}`` (or ``GET``
with them as query parameters; ``extensions.persistedQuery`` in place of ``query`` for a persisted
operation) and ``Accept: text/event-stream`` answers a stream of ``event: next`` messages
whose ``data`` is a GraphQL result, ending with ``event: complete``. Authentication is the same
``Authorization: Bearer <key>`` header as for ``/graphql``. Closing the connection ends the
subscription and releases its watchers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from .auth import Principal
from .graphql.errors import ErrorCodes

__all__ = ["sse_endpoint"]


def _result(result: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [ErrorCodes._coded(e).formatted for e in result.errors]
    return body


def sse_endpoint(view: Any) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """The Starlette endpoint running subscriptions of ``view``'s schema over SSE."""

    async def endpoint(request: Request) -> Response:
        if request.method == "POST":
            try:
                payload = await request.json()
            except (ValueError, RecursionError):
                return JSONResponse({"errors": [{"message": "body must be JSON"}]}, status_code=400)
        else:
            payload = dict(request.query_params)
            try:
                for key in ("variables", "extensions"):
                    if key in payload:
                        payload[key] = json.loads(payload[key])
            except (ValueError, RecursionError):
                return JSONResponse({"errors": [{"message": "variables and extensions must be JSON"}]}, status_code=400)
        query = payload.get("query")
        extensions = payload.get("extensions")
        if not isinstance(query, str) and not isinstance(extensions, dict):  # a persisted operation has no query
            return JSONResponse({"errors": [{"message": "query is required"}]}, status_code=400)
        principal: Principal = request.scope["principal"]
        context = view.context_for(principal, request)
        stream = await view.schema.subscribe(query if isinstance(query, str) else None,
                                             variable_values=payload.get("variables") or {},
                                             context_value=context, operation_name=payload.get("operationName"),
                                             operation_extensions=extensions if isinstance(extensions, dict) else None)
        if not hasattr(stream, "__aiter__"):  # a pre-execution error (validation, not a subscription, ...)
            return JSONResponse(_result(stream), status_code=400)

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                async for result in stream:
                    yield {"event": "next", "data": json.dumps(_result(result), default=str)}
                yield {"event": "complete", "data": ""}
            finally:
                await stream.aclose()

        return _EndingEventSourceResponse(events(), ping=view.config.events.keep_alive_interval)

    return endpoint


class _EndingEventSourceResponse(EventSourceResponse):
    """An event stream that always ends its HTTP response: when the server shuts down, sse-starlette
    cancels the stream without the final empty chunk, and the ASGI server reports "ASGI callable
    returned without completing response". The client then sees the stream end and reconnects with
    ``after`` (the last ``eventId``) to another replica or the restarted one."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = {"started": False, "ended": False}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["ended"] = True
            await send(message)

        try:
            await super().__call__(scope, receive, tracking_send)
        finally:
            if state["started"] and not state["ended"]:
                with contextlib.suppress(Exception):  # the client may be gone already
                    await send({"type": "http.response.body", "body": b"", "more_body": False})


