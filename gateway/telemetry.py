"""OpenTelemetry traces: a server span per HTTP request or WebSocket connection (the official ASGI
instrumentation), a span per GraphQL operation, and a client span per upstream call (the official
aiohttp-client instrumentation) carrying ``gateway.broker``, ``gateway.connection`` and
``gateway.endpoint``. One operation is one trace: over HTTP the operation's span is a child of the
request's; over a WebSocket, which carries many operations, each operation starts a trace of its
own, linked to the connection's span. The operation's span carries ``gateway.request_id``.

Off unless an OTLP endpoint is configured (``[telemetry] otlp_endpoint`` or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); spans then go to the
collector over OTLP/HTTP in batches. Tests pass their own ``TracerProvider`` (an in-memory exporter).

Upstream spans never carry credentials: URLs lose their query string, and no header is recorded.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import aiohttp
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, Status, StatusCode, Tracer, get_current_span
from starlette.applications import Starlette
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension

from .config import ConnectionConfig, TelemetryConfig
from .request_id import current_request_id

__all__ = ["Telemetry", "otlp_traces_endpoint", "upstream_trace_configs"]

#: requests that would only add noise to traces: probes, metrics, the explorer's static files
EXCLUDED_URLS = "/healthz,/readyz,/metrics,/graphiql/"

ATTR_BROKER = "gateway.broker"
ATTR_CONNECTION = "gateway.connection"
ATTR_ENDPOINT = "gateway.endpoint"

#: the telemetry of the running app (set while its lifespan runs): what the upstream sessions use
_active: Telemetry | None = None


def otlp_traces_endpoint(config: TelemetryConfig) -> str | None:
    """Where traces go: the configured endpoint's ``/v1/traces``, else the standard environment variables; ``None``: off."""
    if config.otlp_endpoint:
        base = config.otlp_endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else base + "/v1/traces"
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    return None


class Telemetry:
    """Tracing for one app: ``provider`` is ``None`` when tracing is off (everything is then a no-op)."""

    def __init__(self, provider: TracerProvider | None = None, *, owned: bool = False) -> None:
        self.provider = provider
        self.owned = owned  # a provider we built (and therefore shut down)
        self.tracer: Tracer | None = provider.get_tracer("gateway") if provider is not None else None

    @classmethod
    def from_config(cls, config: TelemetryConfig) -> Telemetry:
        """Tracing to the configured OTLP endpoint, or off."""
        endpoint = otlp_traces_endpoint(config)
        if endpoint is None:
            return cls()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        return cls(provider, owned=True)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def instrument(self, app: Starlette) -> None:
        """Wrap ``app`` in the ASGI instrumentation: one server span per request or WebSocket
        connection (no span per message sent or received)."""
        if self.provider is None:
            return
        app.add_middleware(OpenTelemetryMiddleware, tracer_provider=self.provider, excluded_urls=EXCLUDED_URLS,
                           exclude_spans=["receive", "send"])

    def schema_extensions(self) -> list[type[SchemaExtension]]:
        """The operation-span extension (none when tracing is off)."""
        return [] if self.tracer is None else [_operation_span_extension(self.tracer)]

    def activate(self) -> None:
        """From now on, new upstream sessions are traced with this provider (the app's lifespan start)."""
        global _active
        if self.provider is not None:
            _active = self

    async def deactivate(self) -> None:
        """Stop tracing new upstream sessions; flush (and, for an OTLP provider, shut down) in a thread:
        the exporter's HTTP calls block."""
        global _active
        if _active is self:
            _active = None
        provider = self.provider
        if provider is not None:
            await asyncio.to_thread(provider.force_flush)
            if self.owned:
                await asyncio.to_thread(provider.shutdown)


def _operation_span_extension(tracer: Tracer) -> type[SchemaExtension]:
    class OperationSpan(SchemaExtension):
        """A span around each GraphQL operation, current while it runs: its upstream calls are its children."""

        def on_operation(self) -> Iterator[None]:
            ctx = self.execution_context
            parent: otel_context.Context | None = None
            links: list[Link] = []
            if isinstance(getattr(ctx.context, "request", None), WebSocket):
                # one WebSocket carries many operations: each is a trace of its own, linked to the connection's
                connection = get_current_span().get_span_context()
                if connection.is_valid:
                    links.append(Link(connection))
                parent = otel_context.Context()
            with tracer.start_as_current_span("GraphQL operation", context=parent, links=links, record_exception=False,
                                              set_status_on_exception=False) as span:
                rid = current_request_id()
                if rid:
                    span.set_attribute("gateway.request_id", rid)
                yield
                _describe(span, ctx)

    return OperationSpan


def _describe(span: Span, ctx: Any) -> None:
    """Name the span after the operation (``query Dashboard``) and record its outcome."""
    try:
        kind = ctx.operation_type.value
    except Exception:  # noqa: BLE001 - no document (refused before parsing)
        kind = None
    name = ctx.operation_name
    if kind:
        span.set_attribute("graphql.operation.type", kind)
    if name:
        span.set_attribute("graphql.operation.name", name)
    if kind or name:
        span.update_name(" ".join(part for part in (kind, name) if part))
    result = ctx.result
    errors = getattr(result, "errors", None) or ctx.pre_execution_errors or []
    if errors:
        span.set_attribute("graphql.errors", len(errors))
        codes = sorted({str((e.extensions or {}).get("code", "")) for e in errors} - {""})
        if codes:
            span.set_attribute("graphql.error.codes", codes)
        if getattr(result, "data", None) is None:
            span.set_status(Status(StatusCode.ERROR, errors[0].message[:200]))


def upstream_trace_configs(config: ConnectionConfig) -> list[aiohttp.TraceConfig]:
    """The aiohttp trace configuration for a new upstream session of ``config``'s connection while an
    app with tracing runs; ``[]`` otherwise."""
    telemetry = _active
    if telemetry is None or telemetry.provider is None:
        return []
    base_path = _path(config.base_url)

    def request_hook(span: Span, params: aiohttp.TraceRequestStartParams) -> None:
        if span is None or not span.is_recording():
            return
        path = params.url.path
        endpoint = path[len(base_path):] if path.startswith(base_path) else path
        span.update_name(f"{params.method} {config.broker}")
        span.set_attribute(ATTR_BROKER, config.broker)
        span.set_attribute(ATTR_CONNECTION, config.name)
        span.set_attribute(ATTR_ENDPOINT, endpoint.lstrip("/") or "/")

    return [create_trace_config(url_filter=_without_query, request_hook=request_hook,
                                tracer_provider=telemetry.provider)]


def _path(url: str) -> str:
    from yarl import URL

    return URL(url).path


def _without_query(url: Any) -> str:
    """Upstream URLs in spans lose their query string and user info (never a credential in a trace)."""
    return str(url.with_query(None).with_user(None).with_password(None))
