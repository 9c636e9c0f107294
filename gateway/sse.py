"""Subscriptions over Server-Sent Events (the graphql-sse "distinct connections" mode).

``POST /graphql/stream`` with a JSON body ``{query, variables, operationName}`` (or ``GET`` with them
as query parameters) and ``Accept: text/event-stream`` answers a stream of ``event: next`` messages
whose ``data`` is a GraphQL result, ending with ``event: complete``. Authentication is the same
``Authorization: Bearer <key>`` header as for ``/graphql``. Closing the connection ends the
subscription and releases its watchers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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
            except ValueError:
                return JSONResponse({"errors": [{"message": "body must be JSON"}]}, status_code=400)
        else:
            payload = dict(request.query_params)
            if "variables" in payload:
                payload["variables"] = json.loads(payload["variables"])
        query = payload.get("query")
        if not isinstance(query, str):
            return JSONResponse({"errors": [{"message": "query is required"}]}, status_code=400)
        principal: Principal = request.scope["principal"]
        context = view.context_for(principal, request)
        stream = await view.schema.subscribe(query, variable_values=payload.get("variables") or {},
                                             context_value=context, operation_name=payload.get("operationName"))
        if not hasattr(stream, "__aiter__"):  # a pre-execution error (validation, not a subscription, ...)
            return JSONResponse(_result(stream), status_code=400)

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                async for result in stream:
                    yield {"event": "next", "data": json.dumps(_result(result), default=str)}
                yield {"event": "complete", "data": ""}
            finally:
                await stream.aclose()

        return EventSourceResponse(events(), ping=view.config.events.keep_alive_interval)

    return endpoint


