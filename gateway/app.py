"""The Starlette app: ``/graphql`` (POST; GET for queries only; WebSocket with graphql-transport-ws),
``/healthz``, authentication, and the lifespan that opens and closes the upstream sessions."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET

from .auth import Principal, authenticate, bearer_token
from .brokers.metrics import SessionMetrics
from .brokers.runtime import Runtime
from .config import GatewayConfig
from .events import Events
from .events.metrics import GatewayMetrics
from .graphql.context import Context
from .graphql.schema import build_schema
from .idempotency import IdempotencyStore, RedisIdempotencyStore
from .registry import Registry
from .request_id import RequestIdMiddleware
from .sse import sse_endpoint

__all__ = ["create_app"]

log = logging.getLogger(__name__)


class GatewayGraphQL(GraphQL):  # type: ignore[type-arg]
    """Strawberry's ASGI view with the gateway's context: one set of loaders per request."""

    def __init__(self, config: GatewayConfig, registry: Registry, idempotency: IdempotencyStore | RedisIdempotencyStore,
                 events: Events) -> None:
        protocols = [GRAPHQL_TRANSPORT_WS_PROTOCOL]
        if config.allow_legacy_ws_protocol:
            protocols.append(GRAPHQL_WS_PROTOCOL)
        super().__init__(
            build_schema(config.limits, introspection=config.development),
            graphql_ide="graphiql" if config.development else None,
            allow_queries_via_get=True,
            subscription_protocols=protocols,
            max_subscriptions_per_connection=config.limits.max_subscriptions_per_connection,
            keep_alive=True,
            keep_alive_interval=config.events.keep_alive_interval,
        )
        self.config = config
        self.registry = registry
        self.idempotency = idempotency
        self.events = events

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
                       operation_timeout=self.config.limits.operation_timeout, request=request)

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/graphql"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        token = bearer_token(headers.get("authorization"))
        principal = authenticate(self.config, token)
        if principal is None:
            response = JSONResponse({"errors": [{"message": "a valid API key is required",
                                                 "extensions": {"code": "UNAUTHENTICATED"}}]},
                                    status_code=401, headers={"WWW-Authenticate": 'Bearer realm="broker-gateway"'})
            await response(scope, receive, send)
            return
        scope["principal"] = principal
        await self.app(scope, receive, send)


def create_app(config: GatewayConfig, *, registry: Registry | None = None) -> Starlette:
    """The gateway app for ``config``; the registry's adapters start and stop with the app.

    With ``[events] backend = "redis"`` one Redis client (a blocking pool: a burst waits for a
    connection instead of failing) is shared by the broker sessions (pacing, critical sections,
    confirmations) of every replica."""
    metrics = GatewayMetrics()
    shared_redis = _redis(config)
    registry = registry or Registry(config, Runtime(SessionMetrics(metrics.registry), shared_redis))
    events = Events.build(config.events, registry, metrics)
    idempotency: IdempotencyStore | RedisIdempotencyStore = (
        RedisIdempotencyStore(config.events.redis_url) if config.events.backend == "redis" and config.events.redis_url
        else IdempotencyStore())
    graphql_app = GatewayGraphQL(config, registry, idempotency, events)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await registry.start()
        await events.start()
        try:
            yield
        finally:
            await events.close()
            await idempotency.close()
            await registry.close()
            if shared_redis is not None:
                await shared_redis.aclose()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "connections": sorted(registry.adapters),
                             "subscriptions": int(events.metrics.active_subscriptions._value.get()),
                             "watchers": events.watchers.active})

    async def metrics(request: Request) -> Response:
        return Response(events.metrics.render(), media_type="text/plain; version=0.0.4")

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/graphql/stream", sse_endpoint(graphql_app), methods=["GET", "POST"]),
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
        ],
        lifespan=lifespan,
    )
    app.state.registry = registry
    app.state.events = events
    app.add_middleware(AuthMiddleware, config=config)
    app.add_middleware(RequestIdMiddleware)  # outermost: every answer carries X-Request-Id
    return app


def _redis(config: GatewayConfig) -> Any:
    """The Redis client the broker sessions share, or ``None`` without the Redis backend."""
    if config.events.backend != "redis" or not config.events.redis_url:
        return None
    import redis.asyncio as redis

    pool = redis.BlockingConnectionPool.from_url(config.events.redis_url, max_connections=256, timeout=20)
    return redis.Redis(connection_pool=pool)
