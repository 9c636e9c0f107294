"""Property-based fuzzing over real HTTP and WebSocket (hypothesis, hypothesis-graphql): operations
valid by the schema (and ones with one schema violation), malformed bodies, malformed variables and
malformed WebSocket frames, against a production gateway in front of its own sandbox venue.

Whatever arrives: no 5xx, no ``INTERNAL``, every error carries ``extensions.code``, every answer is JSON,
and none comes later than the operation deadline. The examples are derandomized (the same every run)
and each property has a time budget, so the module runs in about half a minute.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner
from tests.conftest import MAIN_KEY, TEST_VENUE, gateway_config, lemon_connections
from tests.harness import QUERIES, RunningGateway, running_gateway

SDL = (QUERIES.parent / "schema" / "schema.graphql").read_text()
DEADLINE = 10.0  # [limits] operation_timeout of the fuzzed gateway, seconds
BUDGET = 6.0     # seconds of examples per property, about (the examples past it return at once)
HEADERS = {"Authorization": f"Bearer {MAIN_KEY}", "Content-Type": "application/json"}

SCALARS = {
    "Decimal": st.decimals(min_value=-10**6, max_value=10**6, places=4, allow_nan=False,
                           allow_infinity=False).map(lambda d: nodes.String(str(d))),
    "DateTime": st.datetimes(timezones=st.just(UTC)).map(lambda d: nodes.String(d.isoformat())),
}

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)



def fuzz(examples: int) -> settings:
    return settings(derandomize=True, database=None, deadline=None, max_examples=examples,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
async def fuzzed() -> AsyncIterator[RunningGateway]:
    runner = SandboxRunner(["lemon"], config=EngineConfig.fast(), venue_options=TEST_VENUE)
    await runner.start()
    config = gateway_config(lemon_connections(runner.base_urls["lemon"]), profile="production")
    config.limits.operation_timeout = DEADLINE
    try:
        async with running_gateway(config) as gateway:
            yield gateway
    finally:
        await runner.stop()


def _check_body(body: Any, context: object) -> None:
    entries = body if isinstance(body, list) else [body]
    for entry in entries:
        assert isinstance(entry, dict) and ("data" in entry or "errors" in entry), (context, body)
        for error in entry.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            assert code and code != "INTERNAL", (context, error)


def _check_http(response: httpx.Response, elapsed: float, context: object) -> None:
    assert response.status_code < 500, (context, response.status_code, response.text[:500])
    assert elapsed <= DEADLINE + 1, (context, elapsed)
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return  # a subscription started: its events are checked elsewhere
    assert response.headers.get("content-type", "").startswith("application/json"), (context, response.text[:300])
    _check_body(response.json(), context)


def _post(http: httpx.Client, url: str, content: bytes | str, context: object) -> None:
    started = time.monotonic()
    with http.stream("POST", url, content=content, headers=HEADERS) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
    _check_http(response, time.monotonic() - started, context)


def _within(budget: float) -> Callable[[], bool]:
    stop = time.monotonic() + budget
    return lambda: time.monotonic() < stop


async def _in_thread(run: Callable[[], None]) -> None:
    await asyncio.to_thread(run)  # the gateway keeps serving on the test's loop meanwhile


async def test_operations_valid_by_the_schema_and_with_one_violation(fuzzed: RunningGateway) -> None:
    operations = st.one_of(from_schema(SDL, custom_scalars=SCALARS),
                           from_schema(SDL, custom_scalars=SCALARS, mode=Mode.NEGATIVE))
    more = _within(2 * BUDGET)

    def run() -> None:
        with httpx.Client(timeout=DEADLINE + 5) as http:
            @fuzz(300)
            @given(document=operations)
            def check(document: str) -> None:
                if more():
                    _post(http, fuzzed.url, json.dumps({"query": document}), document)

            check()

    await _in_thread(run)


async def test_malformed_bodies_and_variables(fuzzed: RunningGateway) -> None:
    document = "query Q($f: OrderFilter, $n: Int, $a: String) { orders(first: $n, after: $a, filter: $f) " \
               "{ edges { node { id status quantity } } } }"
    bodies = st.one_of(
        st.binary(max_size=200),
        JSON.map(json.dumps),
        st.fixed_dictionaries({"query": JSON | st.text(max_size=40)}, optional={
            "variables": JSON, "operationName": JSON, "extensions": JSON}).map(json.dumps),
        st.fixed_dictionaries({"query": st.just(document), "variables": JSON}).map(json.dumps),
        st.fixed_dictionaries({"query": st.just(document), "variables": st.fixed_dictionaries(
            {}, optional={"f": JSON, "n": JSON, "a": JSON})}).map(json.dumps),
    )
    more = _within(BUDGET)

    def run() -> None:
        with httpx.Client(timeout=DEADLINE + 5) as http:
            @fuzz(800)
            @given(body=bodies, stream=st.booleans())
            def check(body: bytes | str, stream: bool) -> None:
                if more():
                    _post(http, fuzzed.url + ("/stream" if stream else ""), body, body)

            check()

    await _in_thread(run)


async def test_malformed_websocket_frames(fuzzed: RunningGateway) -> None:
    frames = st.one_of(
        st.text(max_size=60),
        st.binary(max_size=60),
        JSON.map(json.dumps),
        st.fixed_dictionaries({"type": st.sampled_from(["subscribe", "complete", "ping", "pong", "connection_init"])
                               | JSON}, optional={"id": JSON, "payload": JSON}).map(json.dumps),
        st.fixed_dictionaries({"id": st.text(min_size=1, max_size=4), "type": st.just("subscribe"),
                               "payload": st.fixed_dictionaries({"query": st.text(max_size=60) | st.just(
                                   "subscription { orderStatusChanged { eventId } }")}, optional={
                                   "variables": JSON, "extensions": JSON})}).map(json.dumps),
    )
    url = fuzzed.url.replace("http://", "ws://")
    more = _within(BUDGET)

    def run() -> None:
        @fuzz(200)
        @given(frame=frames)
        def check(frame: str | bytes) -> None:
            if not more():
                return
            with ws_connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:  # type: ignore[list-item]
                ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {MAIN_KEY}"}}))
                assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
                ws.send(frame)
                try:
                    while True:
                        message = json.loads(ws.recv(timeout=0.3))
                        if message.get("type") == "error":
                            _check_body({"errors": message["payload"]}, frame)
                        elif message.get("type") == "next":
                            _check_body(message["payload"], frame)
                except TimeoutError:
                    return  # still open: the frame was taken as a valid message
                except ConnectionClosed:
                    pass
                code = ws.close_code
                assert code is not None and (code == 1000 or 4000 <= code < 5000), (frame, code, ws.close_reason)

        check()

    await _in_thread(run)
