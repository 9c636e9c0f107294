"""Transport rules in front of the GraphQL endpoints: every refusal is a one-line JSON answer with an
``extensions.code``, never a 5xx or a traceback.

:class:`TransportGuard` (ASGI middleware) checks each HTTP request to ``/graphql`` and
``/graphql/stream`` and each WebSocket handshake on ``/graphql`` before anything else runs:

* more than one ``Authorization`` header → 400 ``BAD_REQUEST`` (HTTP) or close 4400 (WebSocket);
  a proxy and the gateway must never disagree about which one counts;
* a method other than GET and POST → 405 ``METHOD_NOT_ALLOWED`` with ``Allow: GET, POST``;
* CSRF prevention (Apollo Router's rule): a request that a browser sends without a CORS preflight
  (no ``Content-Type``, or ``text/plain``, ``application/x-www-form-urlencoded``, ``multipart/form-data``;
  a GET carries no content type; one without ``query`` or ``extensions`` runs nothing and is let through)
  is refused with 400 ``CSRF_REFUSED`` unless it carries a non-empty
  header of ``[transport] csrf_required_headers`` (default ``x-graphql-csrf``, ``apollo-require-preflight``,
  ``x-apollo-operation-name``). The explorer page (GET with ``Accept: text/html``) is not an operation and
  is served. With such a header, a ``text/plain`` body (or one without a content type) is read as JSON;
* WebSocket connections that have not completed ``connection_init`` are capped per client address
  (``[transport] max_unauthenticated_sockets_per_client``, default 20); one more is closed at once with
  1013 (try again later).

:func:`json_http_errors` turns Starlette's 404/405 for other paths into the same JSON shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["GRAPHQL_PATHS", "SIMPLE_CONTENT_TYPES", "TransportGuard", "error_body", "json_error", "json_http_errors",
           "single_authorization", "status_code_name"]

log = logging.getLogger(__name__)

#: the paths whose requests the guard checks
GRAPHQL_PATHS = ("/graphql", "/graphql/stream")

#: content types a browser sends cross-site without a CORS preflight (fetch spec, CORS-safelisted)
SIMPLE_CONTENT_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})


def error_body(message: str, code: str) -> dict[str, Any]:
    """``{"errors": [{"message", "extensions": {"code"}}]}``: the shape of every refusal."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def json_error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A refusal as a JSON response with HTTP ``status``."""
    return JSONResponse(error_body(message, code), status_code=status, headers=headers)


_STATUS_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                 405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 413: "PAYLOAD_TOO_LARGE",
                 415: "UNSUPPORTED_MEDIA_TYPE", 429: "RATE_LIMITED"}


def status_code_name(status: int) -> str:
    """The ``extensions.code`` for an HTTP refusal ``status``."""
    return _STATUS_CODES.get(status, "BAD_REQUEST")


def json_http_errors() -> dict[Any, Callable[..., Any]]:
    """Starlette ``exception_handlers`` answering its HTTP errors (unknown path, wrong method) as JSON."""

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"no endpoint at {request.url.path}; GraphQL is served at /graphql and /graphql/stream"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return json_error(exc.status_code, message, status_code_name(exc.status_code), headers=exc.headers)

    return {HTTPException: handler}


def _headers(scope: Scope, name: bytes) -> list[bytes]:
    return [value for key, value in scope.get("headers", []) if key.lower() == name]


def single_authorization(scope: Scope) -> str | None:
    """The one ``Authorization`` header's value (Latin-1, as HTTP defines header bytes), ``None`` without
    one. The guard has refused requests with several."""
    values = _headers(scope, b"authorization")
    return values[0].decode("latin-1") if values else None


def _essence(content_type: bytes) -> str:
    """The MIME type essence (``text/plain`` of ``Text/Plain; charset=utf-8``); ``""`` when missing."""
    return content_type.decode("latin-1").split(";", 1)[0].strip().lower()


def _operation_params(scope: Scope) -> bool:
    """Whether a GET's query string carries an operation (``query`` or ``extensions``)."""
    from urllib.parse import parse_qs

    params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return "query" in params or "extensions" in params


class TransportGuard:
    """ASGI middleware applying the transport rules of the module docstring."""

    def __init__(self, app: ASGIApp, *, csrf_required_headers: Iterable[str] = (), csrf_prevention: bool = True,
                 max_unauthenticated_per_client: int = 20, is_explorer_page: Callable[[Scope], bool] | None = None) -> None:
        self.app = app
        self.csrf_headers = tuple(h.lower().encode("latin-1") for h in csrf_required_headers)
        self.csrf_prevention = csrf_prevention
        self.max_unauthenticated = max_unauthenticated_per_client
        self.is_explorer_page = is_explorer_page or (lambda scope: False)
        self.unauthenticated: dict[str, int] = {}  # client address → sockets without connection_ack yet

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # each case goes straight to its coroutine: no frame of this dispatch for a connection's life
        if scope["type"] == "http" and scope["path"] in GRAPHQL_PATHS:
            refusal = self._refuse_http(scope)
            if refusal is not None:
                return refusal(scope, receive, send)
        elif scope["type"] == "websocket" and scope["path"] == "/graphql":
            return self._websocket(scope, receive, send)
        return self.app(scope, receive, send)

    # -- HTTP ---------------------------------------------------------------------------------------

    def _refuse_http(self, scope: Scope) -> Response | None:
        if len(_headers(scope, b"authorization")) > 1:
            return json_error(400, "send one Authorization header, not several", "BAD_REQUEST")
        method = scope["method"]
        if method not in ("GET", "POST"):
            if scope["path"] == "/graphql/stream":
                hint = "subscriptions over SSE are POST (or GET) /graphql/stream"
            else:
                hint = "operations are POST /graphql (queries also GET); subscriptions are WebSocket /graphql"
            return json_error(405, f"{method} is not allowed: {hint}", "METHOD_NOT_ALLOWED",
                              headers={"Allow": "GET, POST"})
        if not self.csrf_prevention or (method == "GET" and (self.is_explorer_page(scope) or not _operation_params(scope))):
            return None  # a GET without an operation runs nothing (the explorer page, or a 400 later)
        content_types = _headers(scope, b"content-type")
        essence = _essence(content_types[0]) if content_types else ""
        if essence and essence not in SIMPLE_CONTENT_TYPES:
            return None  # a browser preflights this request: CORS decides
        if not any(v.strip() for name in self.csrf_headers for v in _headers(scope, name)):
            names = ", ".join(h.decode() for h in self.csrf_headers)
            return json_error(400, "refused as a possible cross-site request forgery: send Content-Type: "
                                   f"application/json, or a non-empty header of: {names}", "CSRF_REFUSED")
        if essence in ("", "text/plain") and method == "POST":  # preflighted by the header: the body is JSON
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
            scope["headers"].append((b"content-type", b"application/json"))
        return None

    # -- WebSocket ----------------------------------------------------------------------------------

    async def _deny(self, scope: Scope, receive: Receive, send: Send, code: int, reason: str) -> None:
        """Refuses a WebSocket with a close ``code`` and ``reason`` the client can read: the handshake is
        completed (with graphql-transport-ws when offered) and the socket closed at once."""
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        offered = scope.get("subprotocols") or []
        await send({"type": "websocket.accept",
                    "subprotocol": "graphql-transport-ws" if "graphql-transport-ws" in offered else None})
        await send({"type": "websocket.close", "code": code, "reason": reason})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if len(_headers(scope, b"authorization")) > 1:
            await self._deny(scope, receive, send, 4400, "send one Authorization header, not several")
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if self.unauthenticated.get(client, 0) >= self.max_unauthenticated:
            log.warning("refused a WebSocket from %s: %d connections without connection_init already",
                        client, self.max_unauthenticated)
            await self._deny(scope, receive, send, 1013, "too many WebSocket connections without connection_init "
                                                         "from this address; try again later")
            return
        self.unauthenticated[client] = self.unauthenticated.get(client, 0) + 1
        counted = True

        def release() -> None:
            nonlocal counted
            if counted:
                counted = False
                left = self.unauthenticated.get(client, 1) - 1
                if left > 0:
                    self.unauthenticated[client] = left
                else:
                    self.unauthenticated.pop(client, None)

        async def watching_send(message: Message) -> None:
            if counted and message["type"] == "websocket.send" and '"connection_ack"' in (message.get("text") or ""):
                release()  # authenticated: no longer counts against the address
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            release()
