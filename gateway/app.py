"""The Starlette app: ``/graphql`` (POST; GET for queries only; WebSocket with graphql-transport-ws;
the GraphiQL page for a browser), ``/healthz``, ``/readyz``, ``/metrics``, authentication, and the
lifespan that opens and closes the upstream sessions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET

from . import heap
from .auth import Principal, authenticate, bearer_token
from .brokers.metrics import SessionMetrics
from .brokers.runtime import Runtime
from .config import GatewayConfig
from .disconnect import CancelOnDisconnect
from .events import Events
from .events.after_response import AfterResponse
from .events.fanout import Fanout, grouped_ws_handler
from .events.metrics import GatewayMetrics
from .graphiql import ASSET_PREFIX, explorer_page, explorer_tabs, static_files, wants_explorer_page
from .graphql.context import Context
from .graphql.schema import build_schema
from .http_guard import TransportGuard, json_error, json_http_errors, single_authorization
from .idempotency import IdempotencyStore, RedisIdempotencyStore
from .limits import BodyLimitMiddleware
from .persisted import PersistedOperations, persisted_ws_handler
from .readiness import readiness
from .registry import Registry
from .request_id import RequestIdMiddleware
from .server_send import ServerSend
from .sse import sse_endpoint
from .strict_view import StrictView, strict_ws_handler
from .telemetry import Telemetry

__all__ = ["create_app"]

log = logging.getLogger(__name__)


class GatewayGraphQL(StrictView, GraphQL):  # type: ignore[type-arg]
    """Strawberry's ASGI view with the gateway's context: one set of loaders per request."""

    def __init__(self, config: GatewayConfig, registry: Registry, idempotency: IdempotencyStore | RedisIdempotencyStore,
                 events: Events, persisted: PersistedOperations | None = None, telemetry: Telemetry | None = None) -> None:
        protocols = [GRAPHQL_TRANSPORT_WS_PROTOCOL]
        if config.allow_legacy_ws_protocol:
            protocols.append(GRAPHQL_WS_PROTOCOL)
        self.persisted = persisted or PersistedOperations.from_config(config)
        # hash-only subscribe; subscriptions run once per group of identical ones (gateway.events.fanout);
        # a message that is not a JSON object closes with 4400
        self.graphql_transport_ws_handler_class = strict_ws_handler(
            grouped_ws_handler(persisted_ws_handler(self.persisted)), masked=not config.development)
        first = [self.persisted.extension(), *(telemetry.schema_extensions() if telemetry else [])]
        super().__init__(
            build_schema(config.limits, introspection=config.development, extensions_first=first),
            graphql_ide="graphiql" if config.graphiql_enabled else None,
            allow_queries_via_get=True,
            subscription_protocols=protocols,
            max_subscriptions_per_connection=config.limits.max_subscriptions_per_connection,
            keep_alive=True,
            keep_alive_interval=config.events.keep_alive_interval,
            connection_init_wait_timeout=timedelta(seconds=config.transport.connection_init_timeout),
        )
        self.config = config
        self._tabs: list[dict[str, Any]] | None = None  # the explorer's tabs, read on first use
        self.registry = registry
        self.idempotency = idempotency
        self.events = events
        self.key_slots: dict[str, asyncio.Semaphore] = {}  # each API key's share of upstream requests
        self.fanout = Fanout(self.schema, send_queue_limit=config.events.send_queue_limit)

    async def render_graphql_ide(self, request: Request) -> Response:  # type: ignore[override]
        """The gateway's own explorer page (vendored assets, tabs from ``queries/``)."""
        if self._tabs is None:
            self._tabs = explorer_tabs(schema=self.schema._schema)  # type: ignore[attr-defined]
        return explorer_page(self._tabs, endpoint=request.url.path)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:  # type: ignore[override]
        principal: Principal | None = request.scope.get("principal")
        if principal is None:  # WebSocket: the key may come in connection_init (see on_ws_connect)
            principal = authenticate(self.config, bearer_token(request.headers.get("authorization")))
        if principal is None:
            principal = Principal("unauthenticated", frozenset())
        return self.context_for(principal, request)

    def context_for(self, principal: Principal, request: Any) -> Context:
        return Context(principal=principal, registry=self.registry, idempotency=self.idempotency, events=self.events,
                       max_page_size=self.config.limits.max_page_size,
                       operation_timeout=self.config.limits.operation_timeout,
                       upstream_per_operation=self.config.limits.max_upstream_per_operation,
                       key_slots=self.key_slots.setdefault(
                           principal.name, asyncio.Semaphore(self.config.limits.max_upstream_per_key)),
                       request=request)

    async def on_ws_connect(self, context: Context) -> Any:  # type: ignore[override]
        params = getattr(context, "connection_params", None) or {}
        token = bearer_token(str(params.get("Authorization") or params.get("authorization") or "")) \
            or bearer_token(context.request.headers.get("authorization") if context.request else None)
        principal = authenticate(self.config, token)
        if principal is None:
            from strawberry.exceptions import ConnectionRejectionError

            raise ConnectionRejectionError({"code": "UNAUTHENTICATED", "message": "a valid API key is required"})
        context.principal = principal
        return UNSET


class AuthMiddleware:
    """Resolves ``Authorization: Bearer <key>`` to a principal on HTTP requests to ``/graphql``;
    answers 401 without one in production (and for an unknown key in any profile)."""

    def __init__(self, app: ASGIApp, config: GatewayConfig) -> None:
        self.app = app
        self.config = config

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or not scope["path"].startswith("/graphql") \
                or (self.config.graphiql_enabled and wants_explorer_page(scope)):  # the page itself is public
            return self.app(scope, receive, send)  # as it is: no frame of this middleware's for a WebSocket's life
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = bearer_token(single_authorization(scope))  # TransportGuard refused several
        principal = authenticate(self.config, token)
        if principal is None:
            response = JSONResponse({"errors": [{"message": "a valid API key is required",
                                                 "extensions": {"code": "UNAUTHENTICATED"}}]},
                                    status_code=401, headers={"WWW-Authenticate": 'Bearer realm="broker-gateway"'})
            await response(scope, receive, send)
            return
        scope["principal"] = principal
        await self.app(scope, receive, send)


def create_app(config: GatewayConfig, *, registry: Registry | None = None, telemetry: Telemetry | None = None,
               settle_heap: bool = False) -> Starlette:
    """The gateway app for ``config``; the registry's adapters start and stop with the app.
    ``settle_heap``: once started, freeze the start-up's objects out of the garbage collector's
    scans (:mod:`.heap`; for a serving process, not for tests that build many apps).

    With ``[events] backend = "redis"`` one Redis client (a blocking pool: a burst waits for a
    connection instead of failing) is shared by the broker sessions (pacing, critical sections,
    confirmations) of every replica. ``telemetry``: tracing (default: from ``config.telemetry``,
    off without an OTLP endpoint). Raises ``ValueError`` / ``OSError`` when ``persisted_manifest``
    cannot be loaded.
    """
    metrics = GatewayMetrics()
    shared_redis = _redis(config)
    registry = registry or Registry(config, Runtime(SessionMetrics(metrics.registry), shared_redis))
    telemetry = telemetry or Telemetry.from_config(config.telemetry)
    events = Events.build(config.events, registry, metrics)
    idempotency: IdempotencyStore | RedisIdempotencyStore = (
        RedisIdempotencyStore(config.events.redis_url) if config.events.backend == "redis" and config.events.redis_url
        else IdempotencyStore())
    graphql_app = GatewayGraphQL(config, registry, idempotency, events, telemetry=telemetry)
    phase = {"started": False, "stopping": False}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        telemetry.activate()  # before the adapters open their sessions
        await registry.start()
        await events.start()
        phase["started"] = True
        if settle_heap:
            log.info("start-up heap frozen out of the garbage collector's scans: %d objects", heap.settle())
        try:
            yield
        finally:
            phase["stopping"] = True
            await events.close()
            await idempotency.close()
            await registry.close()
            if shared_redis is not None:
                await shared_redis.aclose()
            await telemetry.deactivate()

    def ops(request: Request) -> bool:
        """Whether ``request`` may see connection names: always in development; in production with
        a key named in ``[transport] ops_keys``."""
        if config.development:
            return True
        principal = authenticate(config, bearer_token(single_authorization(request.scope)))
        return principal is not None and principal.name in config.transport.ops_keys

    async def healthz(request: Request) -> Response:
        if not ops(request):
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "ok", "connections": sorted(registry.adapters),
                             "subscriptions": int(events.metrics.active_subscriptions._value.get()),
                             "watchers": events.watchers.active, "pid": os.getpid()})

    async def readyz(request: Request) -> Response:
        ready, body = readiness(registry, started=phase["started"], stopping=phase["stopping"])
        if not ops(request):  # counts, not names
            states = body["connections"].values()
            body["connections"] = {"total": len(states), "ready": sum(1 for c in states if c["ready"])}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        if not ops(request):
            return json_error(401, "/metrics needs an API key named in [transport] ops_keys", "UNAUTHENTICATED",
                              headers={"WWW-Authenticate": 'Bearer realm="broker-gateway"'})
        return Response(events.metrics.render(), media_type="text/plain; version=0.0.4")

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/graphql/stream", sse_endpoint(graphql_app), methods=["GET", "POST"]),
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_app),
    ]
    if config.graphiql_enabled:
        routes.append(Mount(ASSET_PREFIX, static_files(), name="graphiql"))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=json_http_errors())
    app.state.registry = registry
    app.state.events = events
    app.state.fanout = graphql_app.fanout  # subscription groups and their execution count
    app.state.persisted = graphql_app.persisted
    app.state.telemetry = telemetry
    app.add_middleware(AfterResponse)  # a mutation's events reach subscribers after its response is sent
    app.add_middleware(CancelOnDisconnect)  # work for a client that has gone stops
    app.add_middleware(AuthMiddleware, config=config)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=config.limits.max_body_bytes,  # before anything reads
                       max_ws_bytes=config.limits.max_ws_frame_bytes)
    app.add_middleware(TransportGuard, csrf_required_headers=config.transport.csrf_required_headers,
                       csrf_prevention=config.transport.csrf_prevention,
                       max_unauthenticated_per_client=config.transport.max_unauthenticated_sockets_per_client,
                       is_explorer_page=wants_explorer_page if config.graphiql_enabled else None)
    if config.cors.allow_origins:  # answers preflights before the guard sees them
        app.add_middleware(CORSMiddleware, allow_origins=config.cors.allow_origins, allow_methods=["GET", "POST"],
                           allow_headers=config.cors.allow_headers, allow_credentials=config.cors.allow_credentials,
                           max_age=config.cors.max_age, expose_headers=["x-request-id"])
    app.add_middleware(RequestIdMiddleware)  # every answer carries X-Request-Id
    app.add_middleware(ServerSend)  # outermost of ours: the fan-out's writes after connection_ack skip the layers
    telemetry.instrument(app)  # outermost: the server span covers everything
    return app


def _redis(config: GatewayConfig) -> Any:
    """The Redis client the broker sessions share, or ``None`` without the Redis backend."""
    if config.events.backend != "redis" or not config.events.redis_url:
        return None
    from .redisclient import blocking_client

    return blocking_client(config.events.redis_url, max_connections=256)
