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

from graphql import GraphQLError, OperationType, get_operation_ast, parse
from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from .auth import Principal
from .graphql.errors import present
from .http_guard import json_error
from .strict_view import decode_object

__all__ = ["sse_endpoint"]


def _result(result: Any, masked: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [present(e, masked=masked) for e in result.errors]
    return body


def sse_endpoint(view: Any) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """The Starlette endpoint running subscriptions of ``view``'s schema over SSE."""

    async def endpoint(request: Request) -> Response:
        payload, refusal = await _payload(request)
        if refusal is not None:
            return refusal
        query = payload.get("query")
        extensions = payload.get("extensions")
        if not isinstance(query, str) and not isinstance(extensions, dict):  # a persisted operation has no query
            return json_error(400, "query is required", "BAD_REQUEST")
        if isinstance(query, str) and (refusal := _not_a_subscription(query, payload.get("operationName"),
                                                                     request.method, view.config.limits.max_tokens)):
            return refusal
        principal: Principal = request.scope["principal"]
        context = view.context_for(principal, request)
        stream = await view.schema.subscribe(query if isinstance(query, str) else None,
                                             variable_values=payload.get("variables") or {},
                                             context_value=context, operation_name=payload.get("operationName"),
                                             operation_extensions=extensions if isinstance(extensions, dict) else None)
        if not hasattr(stream, "__aiter__"):  # a pre-execution error (validation, not a subscription, ...)
            return JSONResponse(_result(stream, not view.config.development), status_code=400)

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                async for result in stream:
                    yield {"event": "next", "data": json.dumps(_result(result, not view.config.development), default=str)}
                yield {"event": "complete", "data": ""}
            finally:
                await stream.aclose()

        return _EndingEventSourceResponse(events(), ping=view.config.events.keep_alive_interval)

    return endpoint


async def _payload(request: Request) -> tuple[dict[str, Any], Response | None]:
    """The request's ``{query, variables, operationName, extensions}``, or a 400 refusal: the body (or a
    parameter) is not UTF-8 JSON, not an object, or a member has the wrong type."""
    try:
        if request.method == "POST":
            payload = decode_object(await request.body())
        else:
            payload = dict(request.query_params)
            for key in ("variables", "extensions"):
                if payload.get(key):
                    payload[key] = decode_object(payload[key])
    except json.JSONDecodeError:
        return {}, json_error(400, "the body (and variables, extensions) must be a UTF-8 JSON object", "BAD_REQUEST")
    for key, kind in (("query", str), ("operationName", str), ("variables", dict), ("extensions", dict)):
        if payload.get(key) is not None and not isinstance(payload[key], kind):
            name = "a string" if kind is str else "an object"
            return {}, json_error(400, f"{key} must be {name}", "BAD_REQUEST")
    return payload, None


def _not_a_subscription(query: str, operation_name: Any, method: str, max_tokens: int) -> Response | None:
    """A 4xx when ``query``'s operation is a query or mutation (those are served at ``/graphql``; a GET
    never runs a mutation); ``None`` for a subscription or a document that does not parse (the schema
    answers that with a typed error)."""
    try:
        operation = get_operation_ast(parse(query, max_tokens=max_tokens),
                                      operation_name if isinstance(operation_name, str) else None)
    except GraphQLError:
        return None
    if operation is None or operation.operation is OperationType.SUBSCRIPTION:
        return None
    if operation.operation is OperationType.MUTATION and method == "GET":
        return json_error(405, "mutations are never run over GET; POST them to /graphql", "METHOD_NOT_ALLOWED",
                          headers={"Allow": "POST"})
    return json_error(400, f"/graphql/stream serves subscriptions only; {operation.operation.value} operations are "
                           "served at POST /graphql", "BAD_REQUEST")


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


