"""OpenTelemetry: one trace per GraphQL operation, the operation's span under the server span, and a
client span per upstream call carrying broker, connection and endpoint (in-memory exporter); off
without an OTLP endpoint, exported over OTLP/HTTP with one."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.telemetry import Telemetry
from tests.conftest import gateway_config, lemon_connections
from tests.harness import RunningGateway, SandboxControl, document, running_gateway


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


async def _run(url: str, name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url, json={"query": document(name), "operationName": name,
                                              "variables": variables or {}})
    assert response.status_code == 200 and not response.json().get("errors"), response.text
    return response.json()


async def test_one_trace_per_operation_with_a_child_span_per_upstream_call(
        lemon_url: str, lemon_control: SandboxControl) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with running_gateway(gateway_config(lemon_connections(lemon_url)), telemetry=Telemetry(provider)) as gateway:
        await _run(gateway.url, "Positions", {"first": 1})  # warm up: logins and sessions
        exporter.clear()
        before = await lemon_control.total()
        await _run(gateway.url, "Dashboard")
        upstream_calls = await lemon_control.total() - before
        dashboard_spans = list(exporter.get_finished_spans())
        exporter.clear()
        await _run(gateway.url, "Orders", {"first": 3})
        orders_spans = list(exporter.get_finished_spans())

    for spans, operation_name in ((dashboard_spans, "query Dashboard"), (orders_spans, "query Orders")):
        assert len({s.context.trace_id for s in spans}) == 1, {s.name for s in spans}  # one trace
        by_id = {s.context.span_id: s for s in spans}
        roots = [s for s in spans if s.parent is None]
        assert len(roots) == 1 and roots[0].kind is SpanKind.SERVER, roots
        operations = [s for s in spans if s.name == operation_name]
        assert len(operations) == 1
        operation = operations[0]
        assert operation.parent is not None and by_id[operation.parent.span_id] is roots[0]
        assert operation.attributes["graphql.operation.name"] == operation_name.split()[1]
        clients = [s for s in spans if s.kind is SpanKind.CLIENT]
        assert clients, [s.name for s in spans]
        for span in clients:
            assert operation in _ancestors(span, by_id), span.name
            attributes = dict(span.attributes or {})
            assert attributes["gateway.broker"] == "lemon"
            assert attributes["gateway.connection"] in ("lemon", "lemon-large")
            assert attributes["gateway.endpoint"] and not attributes["gateway.endpoint"].startswith("/")
            assert "?" not in str(attributes.get("http.url", attributes.get("url.full", "")))  # no query strings
    dashboard_clients = [s for s in dashboard_spans if s.kind is SpanKind.CLIENT]
    assert len(dashboard_clients) == upstream_calls  # one span per request the venue counted
    assert {dict(s.attributes)["gateway.endpoint"] for s in dashboard_clients} >= {"account", "positions"}
    assert dashboard_spans[0].context.trace_id != orders_spans[0].context.trace_id


async def test_each_operation_on_a_websocket_is_a_trace_linked_to_the_connection(lemon_url: str) -> None:
    import json

    import websockets

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with running_gateway(gateway_config(lemon_connections(lemon_url)), telemetry=Telemetry(provider)) as gateway:
        async with websockets.connect(gateway.url.replace("http://", "ws://"),
                                      subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            for n in ("1", "2"):
                await ws.send(json.dumps({"id": n, "type": "subscribe", "payload": {
                    "query": document("Positions"), "operationName": "Positions", "variables": {"first": 1}}}))
                while json.loads(await asyncio.wait_for(ws.recv(), 15))["type"] != "complete":
                    pass
        await asyncio.sleep(0.2)  # the connection's span ends with the socket
    spans = list(exporter.get_finished_spans())
    operations = [s for s in spans if s.name == "query Positions"]
    connection = [s for s in spans if s.kind is SpanKind.SERVER]
    assert len(operations) == 2 and len(connection) == 1
    assert operations[0].context.trace_id != operations[1].context.trace_id
    for operation in operations:
        assert operation.parent is None
        assert [link.context.span_id for link in operation.links] == [connection[0].context.span_id]
        assert operation.attributes["gateway.request_id"]
        clients = [s for s in spans if s.kind is SpanKind.CLIENT and s.context.trace_id == operation.context.trace_id]
        assert clients and all(dict(c.attributes)["gateway.broker"] == "lemon" for c in clients)


def test_tracing_is_off_without_an_otlp_endpoint() -> None:
    app = create_app(GatewayConfig())
    assert not app.state.telemetry.enabled
    assert not any("OpenTelemetry" in m.cls.__name__ for m in app.user_middleware)


async def test_with_an_otlp_endpoint_spans_reach_the_collector(lemon_url: str) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: Request) -> Response:
        received.append(ExportTraceServiceRequest.FromString(await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    collector = RunningGatewayLike(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])]))
    await collector.start()
    try:
        config = GatewayConfig.model_validate({**gateway_config(lemon_connections(lemon_url)).model_dump(),
                                               "telemetry": {"otlp_endpoint": collector.url}})
        async with running_gateway(config) as gateway:
            await _run(gateway.url, "Positions", {"first": 1})
        # stopping the gateway flushed its batch
    finally:
        await collector.stop()
    names = {span.name for request in received for rs in request.resource_spans for ss in rs.scope_spans
             for span in ss.spans}
    services = {attr.value.string_value for request in received for rs in request.resource_spans
                for attr in rs.resource.attributes if attr.key == "service.name"}
    assert "query Positions" in names and "GET lemon" in names, names
    assert services == {"broker-gateway"}


class RunningGatewayLike(RunningGateway):
    """Any ASGI app served like the gateway (here: a stand-in OTLP collector)."""

    def __init__(self, app: Starlette) -> None:  # noqa: D107 - reuses RunningGateway's server handling
        import uvicorn

        from tests.harness import _QuietServer

        self.app = app
        self.server = _QuietServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                  lifespan="off", access_log=False))
        self.task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> RunningGatewayLike:
        await super().start()
        self.url = self.url.removesuffix("/graphql")
        return self
