"""What strawberry's ASGI view does with a malformed or misdirected request, made a typed 4xx.

:class:`StrictView` (a mixin for ``strawberry.asgi.GraphQL``):

* an HTTP refusal of strawberry's (unsupported content type, missing query, ...) is a JSON answer with
  ``extensions.code`` instead of plain text;
* a body (or a ``variables`` / ``extensions`` parameter) that is not UTF-8 JSON, or not a JSON object
  (``1``, ``null``, ``[]``: batching is off), is 400 ``BAD_REQUEST``;
* a subscription POSTed to ``/graphql`` is 400 with where subscriptions are served; a mutation over GET
  is 405 ``METHOD_NOT_ALLOWED``.

:func:`strict_ws_handler` makes a graphql-transport-ws message that is not a JSON object (or whose
``payload`` is not one) close the socket with 4400, as the protocol says for an invalid message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import MissingQueryError
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.types.graphql import OperationType

from .graphql.errors import present_formatted
from .http_guard import json_error, status_code_name
from .limits import decode_json

__all__ = ["SUBSCRIPTIONS_HINT", "LeanWebSocketAdapter", "StrictView", "strict_ws_handler"]

#: where subscriptions are served (the answer to a subscription sent elsewhere)
SUBSCRIPTIONS_HINT = "subscriptions are served over WebSocket at /graphql or SSE at /graphql/stream"


class _NotAnObject(json.JSONDecodeError):
    """Parsed, but not a JSON object (a JSONDecodeError so that every caller treats it as bad JSON)."""


def decode_object(data: str | bytes) -> dict[str, Any]:
    """``data`` as a JSON object; raises ``json.JSONDecodeError`` when it is not UTF-8 JSON (also when
    nested too deeply to parse) or not an object."""
    value = decode_json(data)  # not UTF-8, too deep, a 4300-digit integer: JSONDecodeError
    if not isinstance(value, dict):
        raise _NotAnObject("not a JSON object", "", 0)
    return value


class LeanWebSocketAdapter(ASGIWebSocketAdapter):
    """strawberry's WebSocket adapter, keeping no received text while it waits for the next message
    (strawberry's own holds the last one, often a ``subscribe`` with its whole document, for as long
    as the socket stays quiet: most of a subscriber's life)."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                try:
                    yield self.view.decode_json(await self.ws.receive_text())
                except json.JSONDecodeError as e:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from e
        except KeyError as e:
            raise NonTextMessageReceived from e
        except WebSocketDisconnect:
            pass


class StrictView:
    """Mixin for strawberry's ASGI ``GraphQL`` view (see the module docstring)."""

    websocket_adapter_class = LeanWebSocketAdapter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)  # type: ignore[misc]
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))  # type: ignore[attr-defined]
        except HTTPException as exc:
            response = json_error(exc.status_code, exc.reason, status_code_name(exc.status_code),
                                  headers={"Allow": "POST"} if exc.status_code == 405 else None)
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        return decode_object(data)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return decode_object(data)
        except _NotAnObject:
            raise HTTPException(400, "the body (and variables, extensions) must be a JSON object; "
                                     "batched operations are not supported") from None
        except json.JSONDecodeError:
            raise HTTPException(400, "the body (and variables, extensions) must be UTF-8 JSON") from None

    async def execute_single(self, request: Any, request_adapter: Any, sub_response: Any, context: Any,
                             root_value: Any, request_data: Any) -> Any:
        allowed = {OperationType.QUERY} if request_adapter.method == "GET" else {OperationType.QUERY,
                                                                                OperationType.MUTATION}
        try:
            return await self.schema.execute(  # type: ignore[attr-defined]
                request_data.query, root_value=root_value, variable_values=request_data.variables,
                context_value=context, operation_name=request_data.operation_name,
                allowed_operation_types=allowed, operation_extensions=request_data.extensions)
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from None
        except MissingQueryError:
            raise HTTPException(400, "no GraphQL query in the request") from None
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(400, SUBSCRIPTIONS_HINT) from None
            if exc.operation_type is OperationType.MUTATION:
                raise HTTPException(405, "mutations are not allowed over GET; POST them to /graphql") from None
            raise HTTPException(400, f"{exc.operation_type.value} operations are not served here") from None


def strict_ws_handler(base: type[BaseGraphQLTransportWSHandler[Any, Any]], *,
                      masked: bool = False) -> type[BaseGraphQLTransportWSHandler[Any, Any]]:
    """``base`` closing the socket with 4400 on a message that is not a JSON object with a string
    ``type`` (and, for ``subscribe``, a string ``id`` and an object ``payload``); every error it sends
    carries a code, and no suggestion when ``masked``."""

    class StrictTransportWSHandler(base):  # type: ignore[valid-type, misc]
        async def send_message(self, message: Any) -> None:
            kind = message.get("type")
            if kind == "error" and isinstance(message.get("payload"), list):
                message = {**message, "payload": [present_formatted(e, masked=masked) for e in message["payload"]]}
            elif kind == "next" and isinstance(message.get("payload"), dict) and message["payload"].get("errors"):
                payload = message["payload"]
                message = {**message, "payload": {**payload, "errors": [present_formatted(e, masked=masked)
                                                                        for e in payload["errors"]]}}
            await super().send_message(message)

        async def handle_message(self, message: Any) -> None:
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                await self.handle_invalid_message("a message must be a JSON object with a string type")
                return
            if message["type"] == "subscribe" and (not isinstance(message.get("id"), str)
                                                   or not isinstance(message.get("payload"), dict)):
                await self.handle_invalid_message("subscribe needs a string id and an object payload")
                return
            await super().handle_message(message)
            # handled: strawberry's loop keeps its last message while it waits for the next one (most
            # of a subscriber's life); what the operation needs it has taken out
            message.clear()

    return StrictTransportWSHandler
